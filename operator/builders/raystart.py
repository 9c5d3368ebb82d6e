"""The exact `ray start` line KubeRay generates, as pure functions.

`ray_start_params` computes the effective flag map of one group (user rayStartParams, group `resources` and
`labels`, KubeRay's defaults, values derived from the Ray container's resources);
`render_ray_start` renders it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray_operator.builders.resources import is_gpu_key
from ray_operator.constants import DEFAULT_DASHBOARD_AGENT_PORT, DEFAULT_GCS_PORT, DEFAULT_METRICS_PORT
from rayside.quantity import ceil_int, format_number, parse_quantity

RESOURCE_PARAMS = ("num-cpus", "num-gpus", "memory", "resources")
_KEEP_BOOL_VALUE = frozenset({"log-color", "include-dashboard", "include-log-monitor"})
_ACCELERATORS = (("google.com/tpu", "TPU"), ("aws.amazon.com/neuroncore", "neuron_cores"))


class RayStartConflict(ValueError):
    """rayStartParams and the group's top-level `resources`/`labels` conflict (KubeRay rejects the spec)."""


class SpecValueError(ValueError):
    """A spec value the builders cannot use. The message names the field (relative to its group until
    `at()` adds the group's path), the value and what is allowed, e.g.
    `spec.workerGroupSpecs[0].rayStartParams.dashboard-port: "abc" is not a port number (1-65535)`."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        shown = json.dumps(value) if isinstance(value, str) else repr(value)
        super().__init__(f"{field}: {shown} is not {allowed}")

    def at(self, prefix: str) -> SpecValueError:
        """The same error with `prefix` (e.g. `spec.headGroupSpec`) in front of the field."""
        return SpecValueError(f"{prefix}.{self.field}", self.value, self.allowed)


def port_param(params: Mapping[str, str], key: str, default: int) -> int:
    """rayStartParams[key] as a port number (`default` when absent); SpecValueError when it is not one."""
    raw = params.get(key)
    if raw is None:
        return default
    text = str(raw).strip()
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 65535:
        return int(text)
    raise SpecValueError(f"rayStartParams.{key}", raw, "a port number (1-65535)")


@dataclass(frozen=True)
class GroupStart:
    """What the `ray start` line of one group depends on."""

    group_label: str  # "Head" for the head group (as in KubeRay's messages), else the group name
    is_head: bool
    ray_start_params: Mapping[str, str]
    resources: Mapping[str, str]
    labels: Mapping[str, str]
    container: Mapping[str, Any]  # the Ray container (container[0])
    head_address: str  # `<fqdn>:<port>`; used by workers
    autoscaling: bool


def check_conflicts(start: GroupStart) -> None:
    """Raise RayStartConflict with KubeRay's message when top-level fields clash with rayStartParams."""
    if start.resources and any(key in start.ray_start_params for key in RESOURCE_PARAMS):
        raise RayStartConflict(
            "resource fields should not be set in both rayStartParams and Resources for "
            f"{start.group_label} group; please use only one"
        )
    if "labels" in start.ray_start_params:
        raise RayStartConflict(
            f"rayStartParams['labels'] is not supported for {start.group_label} group; "
            "please use the top-level Labels field instead"
        )


def resources_to_params(resources: Mapping[str, str]) -> dict[str, str]:
    """Group `resources` → `num-cpus` / `memory` / `num-gpus` / `resources` (JSON) flags."""
    params: dict[str, str] = {}
    custom: dict[str, str] = {}
    for key, raw in resources.items():
        if key.lower() == "cpu":
            params["num-cpus"] = str(ceil_int(raw))
        elif key.lower() == "memory":
            params["memory"] = str(ceil_int(raw))
        elif is_gpu_key(key):
            params["num-gpus"] = format_number(parse_quantity(raw))
        else:
            custom[key] = format_number(parse_quantity(raw))
    if custom:
        params["resources"] = _resources_json(custom)
    return params


def _resources_json(values: Mapping[str, str]) -> str:
    body = ",".join(f"{json.dumps(k)}:{v}" for k, v in sorted(values.items()))
    return "'{" + body + "}'"


def _limits(container: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    resources = container.get("resources") or {}
    return dict(resources.get("limits") or {}), dict(resources.get("requests") or {})


def container_resource_params(container: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """Flags derived from the Ray container's resources, only where rayStartParams lack them."""
    limits, requests = _limits(container)
    out: dict[str, str] = {}
    cpu = limits.get("cpu", requests.get("cpu"))
    if "num-cpus" not in params and cpu is not None and parse_quantity(cpu) != 0:
        out["num-cpus"] = str(ceil_int(cpu))
    memory = limits.get("memory")
    if "memory" not in params and memory is not None and parse_quantity(memory) != 0:
        out["memory"] = str(ceil_int(memory))
    if "num-gpus" not in params:
        for key in sorted(limits):
            if is_gpu_key(key) and parse_quantity(limits[key]) != 0:
                out["num-gpus"] = str(ceil_int(limits[key]))
                break
    if "resources" not in params:
        for key, ray_name in _ACCELERATORS:
            if key in limits and parse_quantity(limits[key]) != 0:
                out["resources"] = _resources_json({ray_name: str(ceil_int(limits[key]))})
                break
    return out


def ray_start_params(start: GroupStart) -> dict[str, str]:
    """The effective flag map of one group (raises RayStartConflict like KubeRay's validation)."""
    check_conflicts(start)
    params = dict(start.ray_start_params)
    params.update(resources_to_params(start.resources))
    if start.labels:
        params["labels"] = ",".join(f"{k}={v}" for k, v in sorted(start.labels.items()))
    if start.is_head:
        params.setdefault("dashboard-host", "0.0.0.0")
        if start.autoscaling:
            params["no-monitor"] = "true"
    else:
        params.setdefault("address", start.head_address)
    params.setdefault("metrics-export-port", str(DEFAULT_METRICS_PORT))
    params.setdefault("dashboard-agent-listen-port", str(DEFAULT_DASHBOARD_AGENT_PORT))
    params["block"] = "true"
    params.update(container_resource_params(start.container, params))
    return params


def render_ray_start(params: Mapping[str, str], *, is_head: bool) -> str:
    """`ray start [--head]` + ` --k=v ` per flag, sorted; true ⇒ bare flag, false ⇒ dropped."""
    parts = []
    for key in sorted(params):
        value = params[key]
        if value.lower() in ("true", "false") and key not in _KEEP_BOOL_VALUE:
            if value.lower() == "true":
                parts.append(f" --{key} ")
            continue
        parts.append(f" --{key}={value} ")
    return ("ray start --head" if is_head else "ray start") + " " + "".join(parts)


def ray_start_command(start: GroupStart) -> str:
    """The exact `ray start ...` line of one group."""
    return render_ray_start(ray_start_params(start), is_head=start.is_head)


def head_port(head_params: Mapping[str, str] | None) -> int:
    """The GCS port: head rayStartParams `port`, else 6379."""
    raw = (head_params or {}).get("port")
    return int(raw) if raw and raw.isdigit() else DEFAULT_GCS_PORT


def ulimit_prefix(compat: str) -> str:
    """The `ulimit` part KubeRay prepends (v1.5: a literal)."""
    if compat == "v1.5":
        return "ulimit -n 65536"
    return "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}"
