"""localkube: a local Kubernetes API server emulator plus a kubelet that runs pods as local processes.

It is both rayside's test bed and the embedded default runtime of `rayside up`; its fidelity is judged by
the official `kubernetes` Python client and by `kubectl`.
"""
