"""`rayside localkube kubelet` / `python -m localkube.kubelet`: run localkube's kubelet as its own process.

Like a real node agent it only talks to the API server named by a kubeconfig. It prints one line,
`kubelet <node> ready (<mode>)`, once its Node is registered and its watches have their initial lists, so
a parent can wait for that line before creating pods.

Exit codes: 0 clean stop on SIGTERM/SIGINT, 2 usage error (bad flag value, unreadable kubeconfig),
1 cannot start (API server unreachable or refusing the Node, log port unavailable).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import urlsplit

from localkube.gctuning import tune_gc

EXIT_OK, EXIT_START, EXIT_USAGE = 0, 1, 2
DEFAULT_KUBECONFIG = Path.home() / ".localkube" / "kubeconfig"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class UsageError(Exception):
    """A flag has a value that is not allowed; the message is the one line shown to the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class CliSettings:
    """Everything the kubelet process needs, read once from the command line."""

    kubeconfig: Path
    mode: str
    node_name: str
    ready_delay: float | None
    qps: float
    burst: int
    state_dir: Path | None
    verbose: bool
    exit_with_parent: bool
    log_token_file: Path | None = None

    def kubelet_options(self) -> dict[str, Any]:
        return {} if self.ready_delay is None else {"ready_delay": self.ready_delay}

    def token_file(self) -> Path:
        """Where the log endpoint's token is read from: --log-token-file, else next to the kubeconfig."""
        return self.log_token_file or self.kubeconfig.parent / "kubelet-token"


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rayside localkube kubelet", description="Run localkube's kubelet (a node agent).")
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help=f"kubeconfig of the API server (default: {DEFAULT_KUBECONFIG}, what `localkube serve` writes)",
    )
    p.add_argument("--mode", default="simulated", help="simulated (kwok-like) or process (real processes)")
    p.add_argument("--node-name", default="localkube", help="Node to register (default localkube)")
    p.add_argument(
        "--ready-delay", default=None, help="simulated: seconds from seeing a pod to Running (default 0.5)"
    )
    p.add_argument("--qps", default="1000", help="client requests per second (default 1000)")
    p.add_argument("--burst", default="2000", help="client request burst (default 2000)")
    p.add_argument(
        "--state-dir", type=Path, default=None, help="pod state and logs (default: a temporary directory)"
    )
    p.add_argument(
        "--log-token-file",
        type=Path,
        default=None,
        help="bearer token the API server presents for logs (default: kubelet-token next to the kubeconfig)",
    )
    p.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _number(flag: str, text: str, *, minimum: float, integer: bool = False) -> float:
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise UsageError(f"{flag} {text!r}: must be {kind} >= {minimum:g}") from None
    if not value >= minimum or math.isinf(value):  # also rejects nan and inf
        raise UsageError(f"{flag} {text!r}: must be >= {minimum:g}")
    return value


def parse_settings(argv: list[str]) -> CliSettings:
    """Parse and validate the flags (pure: no I/O); raises `UsageError` with a one-line message."""
    args = _parser().parse_args(argv)
    if args.mode not in ("simulated", "process"):
        raise UsageError(f"--mode {args.mode!r}: not allowed (use 'simulated' or 'process')")
    node = str(args.node_name)
    if len(node) > 253 or not _DNS_SUBDOMAIN.match(node):
        raise UsageError(f"--node-name {node!r}: must be a lowercase RFC 1123 subdomain (e.g. 'node-1')")
    delay = None if args.ready_delay is None else _number("--ready-delay", args.ready_delay, minimum=0)
    qps = _number("--qps", args.qps, minimum=0.001)
    burst = int(_number("--burst", args.burst, minimum=1, integer=True))
    return CliSettings(
        kubeconfig=args.kubeconfig or DEFAULT_KUBECONFIG,
        mode=args.mode,
        node_name=node,
        ready_delay=delay,
        qps=qps,
        burst=burst,
        state_dir=args.state_dir,
        verbose=bool(args.verbose),
        exit_with_parent=bool(args.exit_with_parent),
        log_token_file=args.log_token_file,
    )


def _fail(code: int, message: str) -> int:
    print(f"kubelet: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str]) -> int:
    try:
        cfg = parse_settings(argv)
    except UsageError as exc:
        return _fail(EXIT_USAGE, str(exc))
    logging.basicConfig(
        level=logging.DEBUG if cfg.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not cfg.kubeconfig.is_file():
        return _fail(EXIT_USAGE, f"--kubeconfig {cfg.kubeconfig}: no such file (run `localkube serve` first)")
    if cfg.state_dir is not None and cfg.state_dir.exists() and not cfg.state_dir.is_dir():
        return _fail(EXIT_USAGE, f"--state-dir {cfg.state_dir}: not a directory")
    try:
        token = log_token(cfg)
    except UsageError as exc:
        return _fail(EXIT_USAGE, str(exc))
    done = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    tune_gc()  # the kubelet process holds every pod of the node: rarer full collections, like serve
    own_state = cfg.state_dir is None
    state_dir = cfg.state_dir or Path(tempfile.mkdtemp(prefix="localkube-kubelet-"))
    try:
        return _run(cfg, state_dir, done, token)
    finally:
        if own_state:
            shutil.rmtree(state_dir, ignore_errors=True)


def log_token(cfg: CliSettings) -> str:
    """The token the log endpoint requires: `$LOCALKUBE_KUBELET_TOKEN` (a child of `localkube serve`), else
    the token file ("" when there is none: then no one can read logs through this kubelet)."""
    from localkube.kubelet.logs import TOKEN_ENV

    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = cfg.token_file()
    if cfg.log_token_file is None and not path.exists():
        return ""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"--log-token-file {path}: cannot read ({exc.strerror})") from None
    if not token:
        raise UsageError(f"--log-token-file {path}: the file is empty")
    return token


def _run(cfg: CliSettings, state_dir: Path, done: threading.Event, token: str) -> int:
    from localkube.kubelet import Kubelet, SettingsError
    from rayside.kubeclient import KubeClient, KubeError

    try:
        client = KubeClient.from_config(kubeconfig=str(cfg.kubeconfig), qps=cfg.qps, burst=cfg.burst)
    except Exception as exc:  # the kubernetes config loader raises several unrelated types
        return _fail(EXIT_USAGE, f"--kubeconfig {cfg.kubeconfig}: cannot load ({exc})")
    if _loopback(client.host):
        # no proxy applies to 127.0.0.1: skip requests' per-request scan of the proxy environment (~10% of
        # this process's CPU at 50 pods/s); the CA comes from the kubeconfig either way
        client.session.trust_env = False
    try:
        kubelet = Kubelet(
            client,
            mode=cfg.mode,
            state_dir=state_dir,
            node_name=cfg.node_name,
            log_token=token,
            **cfg.kubelet_options(),
        )
    except SettingsError as exc:
        return _fail(EXIT_USAGE, str(exc))
    try:
        kubelet.start()
    except KubeError as exc:
        kubelet.stop()
        return _fail(EXIT_START, f"cannot register node {cfg.node_name} with {client.host}: {exc}")
    except OSError as exc:
        kubelet.stop()
        return _fail(EXIT_START, f"cannot start: {exc}")
    if cfg.exit_with_parent:
        _watch_parent(done)
    while not done.is_set():
        if kubelet.wait_ready(timeout=0.2):
            print(f"kubelet {cfg.node_name} ready ({cfg.mode})", flush=True)
            break
    done.wait()
    kubelet.stop()
    print(f"kubelet {cfg.node_name} stopped", flush=True)
    return EXIT_OK


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _watch_parent(done: threading.Event) -> None:
    """Stop when the parent process goes away (a `localkube serve` that was killed without cleanup)."""
    parent = os.getppid()

    def loop() -> None:
        while not done.wait(1.0):
            if os.getppid() != parent:
                done.set()

    threading.Thread(target=loop, name="kubelet-parent", daemon=True).start()
