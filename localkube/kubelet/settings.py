"""Settings of the localkube kubelet: one frozen object built once from the keyword options of `Kubelet`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["simulated", "process"]
Network = Literal["auto", "netns", "host"]

ANNOTATION_PREFIX = "localkube.rayside.io/"
EXIT_CODE_ANNOTATION = ANNOTATION_PREFIX + "exit-code"
RUN_SECONDS_ANNOTATION = ANNOTATION_PREFIX + "run-seconds"
READY_DELAY_ANNOTATION = ANNOTATION_PREFIX + "ready-delay"
POD_TOKEN_ENV = "LOCALKUBE_POD_TOKEN"  # a token the API server accepts, for pods' service account mounts


class SettingsError(ValueError):
    """A kubelet option has a value that is not allowed."""


@dataclass(frozen=True)
class KubeletSettings:
    """Every tunable of the kubelet; see docs/localkube-kubelet.md for what each one does."""

    mode: Mode = "simulated"
    node_name: str = "localkube"
    # scheduling: None binds pods of every schedulerName; a set restricts binding to those names
    scheduler_names: frozenset[str] | None = None
    bind: bool = True
    # simulated mode
    ready_delay: float = 0.5
    job_run_seconds: float = 1.0
    pod_cidr: str = "10.244.0.0/16"
    simulated_log_text: str = ""
    # process mode
    network: Network = "auto"
    restart_backoff: float = 1.0
    restart_backoff_max: float = 30.0
    probe_floor: float = 0.2
    # node / lease
    lease_seconds: int = 40
    heartbeat_seconds: float = 10.0
    max_pods: int = 0  # 0: 110 in process mode, 1,000,000 in simulated mode
    log_port: int = 0
    log_host: str = "127.0.0.1"
    log_token: str = field(default="", repr=False)  # what the log endpoint requires ("": from the env)
    # the service account token written into pods ("": $LOCALKUBE_POD_TOKEN, else none)
    pod_token: str = field(default="", repr=False)
    api_server_url: str = ""  # default: the client's host
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def pods_capacity(self) -> int:
        if self.max_pods > 0:
            return self.max_pods
        return 110 if self.mode == "process" else 1_000_000


def build_settings(mode: str, node_name: str, options: dict[str, Any]) -> KubeletSettings:
    """Validate `mode` and the keyword options; unknown or ill-typed values raise `SettingsError`."""
    if mode not in ("simulated", "process"):
        raise SettingsError(f"kubelet mode: {mode!r} is not allowed (use 'simulated' or 'process')")
    known = {f.name: f for f in dataclasses.fields(KubeletSettings)}
    for key in options:
        if key not in known or key in ("mode", "node_name"):
            allowed = ", ".join(sorted(k for k in known if k not in ("mode", "node_name")))
            raise SettingsError(f"kubelet option {key!r} is unknown (allowed: {allowed})")
    values = dict(options)
    if "scheduler_names" in values and values["scheduler_names"] is not None:
        values["scheduler_names"] = frozenset(values["scheduler_names"])
    if values.get("network", "auto") not in ("auto", "netns", "host"):
        raise SettingsError(f"kubelet option network: {values['network']!r} is not allowed (auto|netns|host)")
    for key in ("ready_delay", "job_run_seconds", "restart_backoff", "heartbeat_seconds"):
        if key in values and float(values[key]) < 0:
            raise SettingsError(f"kubelet option {key}: {values[key]!r} must be >= 0")
    return KubeletSettings(mode=mode, node_name=node_name, **values)  # type: ignore[arg-type]
