"""localkube's kubelet: registers a Node, binds pending pods to it and runs them, either simulated
(kwok-like, no processes) or as real local processes (per-pod network namespaces as root)."""

from localkube.kubelet.kubelet import Kubelet
from localkube.kubelet.settings import KubeletSettings, SettingsError

__all__ = ["Kubelet", "KubeletSettings", "SettingsError"]
