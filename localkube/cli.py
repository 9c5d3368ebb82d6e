"""`rayside localkube serve` / `python -m localkube`: run a LocalKube until SIGINT/SIGTERM.

Exit codes: 0 clean shutdown, 2 usage error (bad flag or value: one line naming the flag, the value and what
is allowed), 1 failed to start (e.g. port in use, the kubelet process did not become ready).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import NoReturn

from localkube.cluster import LocalKube, Settings, new_token
from localkube.gctuning import tune_gc


class UsageError(Exception):
    """A bad command line; the message is the one line shown to the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rayside localkube serve", description="Run a local Kubernetes API server.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="port (0 = any free port; default 6443)")
    p.add_argument("--kubeconfig", type=Path, default=None, help="where to write the kubeconfig")
    p.add_argument("--data-dir", type=Path, default=None, help="persist objects in DIR (SQLite)")
    p.add_argument(
        "--state-dir", type=Path, default=None, help="certificates and kubelet state (default: temp)"
    )
    p.add_argument("--kubelet", choices=["simulated", "process"], default=None, help="run a kubelet")
    p.add_argument(
        "--kubelet-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the kubelet as a child process (default; --no-kubelet-process: in the server's process)",
    )
    p.add_argument(
        "--kubelet-ready-delay",
        type=float,
        default=None,
        metavar="SECONDS",
        help="simulated kubelet: seconds from seeing a pod to Running (default 0.5)",
    )
    p.add_argument(
        "--watch-history",
        type=int,
        default=Settings.history,
        metavar="N",
        help=f"watch events kept for resuming watches (default {Settings.history})",
    )
    p.add_argument(
        "--controllers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the built-in controllers (GC, namespaces, jobs, ...; default: on when installed)",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="file holding the bearer token to require (default: anonymous access on loopback)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="bearer token to require (visible in the process list; prefer --token-file)",
    )
    p.add_argument(
        "--https",
        dest="https",
        action="store_true",
        default=True,
        help="serve TLS with a generated CA (default; kubectl sends tokens only over https)",
    )
    p.add_argument("--http", dest="https", action="store_false", help="serve plain HTTP")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is None:
        return str(args.token) if args.token else None
    try:
        token = str(args.token_file.read_text().strip())
    except OSError as exc:
        raise UsageError(f"--token-file {args.token_file}: cannot read ({exc.strerror})") from None
    if not token:
        raise UsageError(f"--token-file {args.token_file}: the file is empty")
    return token


def _check_paths(kubeconfig: Path, state_dir: Path, data_dir: Path | None) -> None:
    for flag, path in (("--state-dir", state_dir), ("--data-dir", data_dir)):
        if path is not None and path.exists() and not path.is_dir():
            raise UsageError(f"{flag} {path}: not a directory")
    if kubeconfig.is_dir():
        raise UsageError(f"--kubeconfig {kubeconfig}: is a directory (give a file path)")


def settings_from(argv: list[str]) -> tuple[Settings, bool]:
    """Parse and check the command line (no server started); raises `UsageError` with one line."""
    args = _parser().parse_args(argv)
    token = _token(args)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be between 0 and 65535 (0 picks a free port)")
    if not args.host:
        raise UsageError("--host '': must be an address to listen on (e.g. 127.0.0.1)")
    if args.watch_history < 1:
        raise UsageError(f"--watch-history {args.watch_history}: must be >= 1")
    delay = args.kubelet_ready_delay
    if delay is not None and not (delay >= 0 and math.isfinite(delay)):
        raise UsageError(f"--kubelet-ready-delay {delay}: must be a number >= 0")
    kubeconfig = args.kubeconfig or (args.state_dir or Path.home() / ".localkube") / "kubeconfig"
    state_dir = args.state_dir or kubeconfig.parent
    _check_paths(kubeconfig, state_dir, args.data_dir)
    controllers = args.controllers
    if controllers is None:
        controllers = importlib.util.find_spec("localkube.controllers") is not None
    # Without --token/--token-file anonymous access stays allowed, but the kubeconfig still carries a fresh
    # token: kubectl prompts for a username on HTTPS when its kubeconfig user has no credentials.
    settings = Settings(
        host=args.host,
        port=args.port,
        https=args.https,
        token=token or new_token(),
        anonymous=token is None,
        data_dir=args.data_dir,
        state_dir=state_dir,
        kubeconfig=kubeconfig,
        kubelet=args.kubelet,
        kubelet_options={} if delay is None else {"ready_delay": delay},
        kubelet_process=args.kubelet_process,
        controllers=controllers,
        history=args.watch_history,
    )
    return settings, bool(args.verbose)


def main(argv: list[str]) -> int:
    try:
        settings, verbose = settings_from(argv)
    except UsageError as exc:
        print(f"localkube: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    lk = LocalKube(settings)
    tune_gc()
    try:
        lk.start()
    except sqlite3.Error as exc:
        print(f"localkube: --data-dir {settings.data_dir}: cannot open the database ({exc})", file=sys.stderr)
        lk.stop()
        return 1
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        print(f"localkube: cannot start on {where}: {exc.strerror or exc}", file=sys.stderr)
        lk.stop()
        return 1
    except ImportError as exc:
        print(f"localkube: a component is not available: {exc}", file=sys.stderr)
        lk.stop()
        return 1
    except RuntimeError as exc:  # localkube.kubelet.child.ChildError: the kubelet process did not start
        print(f"localkube: {exc}", file=sys.stderr)
        lk.stop()
        return 1
    done = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(
        f"localkube listening on {lk.url}\nkubeconfig: {lk.kubeconfig}\n"
        f"try: kubectl --kubeconfig {lk.kubeconfig} get namespaces",
        flush=True,
    )
    done.wait()
    lk.stop()
    print("localkube stopped", flush=True)
    return 0
