"""`rayside status` and `rayside down`: look at / stop the session `rayside up --keep` runs (its record is
`~/.rayside/up/session.json`, or under `$RAYSIDE_UP_DIR`)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence

from rayside.kubeclient import KubeClient, KubeError
from rayside.up.session import keep_dir, pods_summary, read_record

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _no_args(name: str, argv: Sequence[str] | None) -> int | None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"]):
        print(f"usage: rayside {name}  (the session of `rayside up --keep`)")
        return EXIT_OK
    if args:
        print(f"rayside {name}: takes no arguments (got {' '.join(args)!r})", file=sys.stderr)
        return EXIT_USAGE
    return None


def status_main(argv: Sequence[str] | None = None) -> int:
    """Print what the kept session runs and its kubeconfig; exit 1 when none runs."""
    if (early := _no_args("status", argv)) is not None:
        return early
    record = read_record(keep_dir())
    if record is None:
        print("rayside status: no kept session runs (start one with `rayside up --keep FILE.yaml`)")
        return EXIT_FAILURE
    kubeconfig = str(record["kubeconfig"])
    print(f"rayside up --keep is running (pid {record['pid']})")
    for name in record.get("objects") or []:
        print(f"  {name}")
    try:
        client = KubeClient.from_config(kubeconfig=kubeconfig)
        print(f"  {pods_summary(client, 'default')} in namespace default")
    except (KubeError, OSError) as exc:
        print(f"  (cannot reach the API server: {exc})")
    print(f"kubeconfig: {kubeconfig}\ntry: kubectl --kubeconfig {kubeconfig} get pods")
    return EXIT_OK


def down_main(argv: Sequence[str] | None = None, timeout: float = 120.0) -> int:
    """Stop the kept session (SIGTERM; it cleans up) and wait for it to exit."""
    if (early := _no_args("down", argv)) is not None:
        return early
    record = read_record(keep_dir())
    if record is None:
        print("rayside down: no kept session runs")
        return EXIT_OK
    pid = int(record["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            print(f"rayside down: stopped (pid {pid}); everything cleaned up")
            return EXIT_OK
        time.sleep(0.5)
    print(f"rayside down: pid {pid} still runs after {timeout:.0f}s", file=sys.stderr)
    return EXIT_FAILURE
