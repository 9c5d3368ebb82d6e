"""RayCluster CR → the autoscaling config dict Ray's autoscaler reads (a pure function, no I/O).

The keys and their meaning match Ray's own KubeRay derivation, so the v1 and v2 autoscalers schedule on the
same node types. Differences, each deliberate:

* every node type carries the label ``ray.io/node-group=<group>`` (``headgroup`` for the head), the label
  each KubeRay Ray node gets at runtime; without it a label selector on the group never triggers scale-up.
  A user label of the same key in the group's top-level ``labels`` wins, as it does at runtime;
* a suspended worker group (``suspend: true``) gets ``min_workers = max_workers = 0``: the operator keeps
  it at zero pods, so requesting nodes of it could only time out;
* ``minReplicas``/``maxReplicas`` default to the CRD defaults (0 and 2147483647) when absent, and a
  cluster without ``workerGroupSpecs`` (head only) gets just the head node type, where Ray's derivation
  fails with a KeyError.

Anything Ray's derivation rejects (no CPU count, a bad quantity, a malformed ``resources`` rayStartParam,
bad label syntax) raises :class:`ConfigError` with a one-line message naming the group and field.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from rayside.objects import JSON, name_of, namespace_of
from rayside.quantity import QuantityError, parse_quantity

log = logging.getLogger(__name__)

HEAD_NODE_TYPE = "headgroup"
NODE_GROUP_LABEL = "ray.io/node-group"
DEFAULT_MAX_REPLICAS = 2147483647
TPU_TOPOLOGY_SELECTOR = "cloud.google.com/gke-tpu-topology"
TPU_ACCELERATOR_SELECTOR = "cloud.google.com/gke-tpu-accelerator"
TPU_GENERATIONS = {
    "tpu-v4-podslice": "v4",
    "tpu-v5-lite-device": "v5litepod",
    "tpu-v5-lite-podslice": "v5litepod",
    "tpu-v5p-slice": "v5p",
    "tpu-v6e-slice": "v6e",
    "tpu7x": "v7x",
}
_SINGLE_CORE_TPUS = ("v5litepod", "v6e")
_STANDARD = frozenset({"CPU", "GPU", "TPU", "memory"})
_LABEL_PART = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_LABEL_RE = re.compile(_LABEL_PART)
_PREFIX_RE = re.compile(rf"({_LABEL_PART})?(\.({_LABEL_PART})?)*")
_LEGACY: dict[str, Any] = {
    "file_mounts": {},
    "cluster_synced_files": [],
    "file_mounts_sync_continuously": False,
    "initialization_commands": [],
    "setup_commands": [],
    "head_setup_commands": [],
    "worker_setup_commands": [],
    "head_start_ray_commands": [],
    "worker_start_ray_commands": [],
    "auth": {},
}


class ConfigError(ValueError):
    """The RayCluster cannot be turned into an autoscaling config (the message names group and field)."""


def derive_autoscaling_config(raycluster: JSON) -> JSON:
    """The autoscaling config for ``raycluster`` (a RayCluster object as the API server returns it)."""
    spec = raycluster.get("spec") or {}
    node_types: JSON = {HEAD_NODE_TYPE: node_type(spec.get("headGroupSpec") or {}, is_head=True)}
    for group in spec.get("workerGroupSpecs") or []:
        node_types[str(group.get("groupName"))] = node_type(group, is_head=False)
    options = spec.get("autoscalerOptions") or {}
    idle_seconds = options.get("idleTimeoutSeconds")
    return {
        "provider": {
            "type": "kuberay",
            "namespace": namespace_of(raycluster),
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "foreground_node_launch": True,
            "worker_liveness_check": False,
        },
        "cluster_name": name_of(raycluster),
        "head_node_type": HEAD_NODE_TYPE,
        "available_node_types": node_types,
        "max_workers": sum(t["max_workers"] for t in node_types.values()),
        "idle_timeout_minutes": idle_seconds / 60.0 if idle_seconds is not None else 1.0,
        "upscaling_speed": 1 if options.get("upscalingMode") == "Conservative" else 1000,
        **copy.deepcopy(_LEGACY),
    }


def node_type(group: JSON, *, is_head: bool) -> JSON:
    """One ``available_node_types`` entry; min/max are in pods (replicas times numOfHosts)."""
    name = HEAD_NODE_TYPE if is_head else str(group.get("groupName"))
    if is_head or group.get("suspend") is True:
        low = high = 0
    else:
        hosts = int(group.get("numOfHosts", 1))
        low = int(group.get("minReplicas", 0)) * hosts
        high = int(group.get("maxReplicas", DEFAULT_MAX_REPLICAS)) * hosts
        if low > high:  # Ray's config validation refuses this too (max_workers < sum of min_workers)
            raise ConfigError(
                f"group {name}: minReplicas {group.get('minReplicas')} is greater than maxReplicas "
                f"{group.get('maxReplicas')}"
            )
    result: JSON = {
        "min_workers": low,
        "max_workers": high,
        "node_config": {},
        "resources": group_resources(group, name),
        "labels": group_labels(group, name),
    }
    if group.get("idleTimeoutSeconds") is not None:
        result["idle_timeout_s"] = float(group["idleTimeoutSeconds"])
    if group.get("priority") is not None:
        result["priority"] = int(group["priority"])
    return result


def group_labels(group: JSON, name: str) -> dict[str, str]:
    """The group's top-level ``labels`` (validated) plus ``ray.io/node-group``; rayStartParams ``labels``
    are ignored with a warning, as Ray does (the operator rejects them)."""
    if (group.get("rayStartParams") or {}).get("labels"):
        log.warning("group %s: rayStartParams.labels is ignored; use the group's top-level labels", name)
    labels = group.get("labels")
    own = labels if isinstance(labels, dict) else {}
    for key, value in own.items():
        _check_label(name, str(key), value)
    return {NODE_GROUP_LABEL: name, **own}


def _check_label(group: str, key: str, value: object) -> None:
    prefix, _, short = key.rpartition("/")
    if "/" in key and (len(prefix) > 253 or not _PREFIX_RE.fullmatch(prefix)):
        raise ConfigError(f"group {group}: labels key {key!r} has an invalid prefix (DNS labels, ≤ 253)")
    if len(short) > 63 or not _LABEL_RE.fullmatch(short):
        raise ConfigError(f"group {group}: labels key {key!r} is invalid (≤ 63 of [A-Za-z0-9_.-])")
    if value is not None and value != "" and (len(str(value)) > 63 or not _LABEL_RE.fullmatch(str(value))):
        raise ConfigError(f"group {group}: labels[{key!r}]={value!r} is invalid (≤ 63 of [A-Za-z0-9_.-])")


# -- resources ----------------------------------------------------------------------------------------------
def group_resources(group: JSON, name: str) -> dict[str, int]:
    """Ray resources of one pod of the group: top-level ``resources`` > rayStartParams > limits > requests."""
    top: Mapping[str, Any] = group.get("resources") or {}
    params: Mapping[str, Any] = group.get("rayStartParams") or {}
    pod_spec = (group.get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers") or [{}]
    k8s = containers[0].get("resources") or {}
    limits: Mapping[str, Any] = k8s.get("limits") or {}
    requests: Mapping[str, Any] = k8s.get("requests") or {}
    custom = _custom_resources(top, params, name)
    out: dict[str, int] = {"CPU": _cpus(top, params, limits, requests, name)}
    gpus = _first(top, params, "GPU", "num-gpus", name)
    if gpus is None:
        gpus = next(
            (n for k, q in _items(limits, requests) if k.endswith("gpu") and (n := _ceil(q, name)) > 0), None
        )
    if gpus is not None:
        out["GPU"] = gpus
    tpus = _tpus(top, custom, limits, requests, name)
    if tpus is not None:
        if "TPU" not in custom:
            out["TPU"] = tpus
        head = _tpu_head_resource(pod_spec.get("nodeSelector") or {}, name)
        if head:
            out[head] = 1
    memory = _first(top, params, "memory", "memory", name)
    if memory is None:
        memory = _ceil(limits["memory"], name) if "memory" in limits else None
    if memory is None and "memory" in requests:
        memory = _ceil(requests["memory"], name)
    if memory is not None:
        out["memory"] = memory
    out.update(custom)
    return out


def _items(*maps: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(str(k), v) for m in maps for k, v in m.items()]


def _ceil(value: Any, group: str, field: str = "resources") -> int:
    try:
        return math.ceil(parse_quantity(value if isinstance(value, str | int | float) else str(value)))
    except QuantityError as exc:
        raise ConfigError(
            f"group {group}: {field} value {value!r} is not a quantity (e.g. 2, 500m, 1Gi)"
        ) from exc


def _int_param(params: Mapping[str, Any], key: str, group: str) -> int:
    try:
        return int(params[key])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"group {group}: rayStartParams.{key}={params[key]!r} is not an integer") from exc


def _first(top: Mapping[str, Any], params: Mapping[str, Any], key: str, param: str, group: str) -> int | None:
    """Top-level ``resources[key]`` (warning when rayStartParams repeats it), else the rayStartParam."""
    if key in top:
        if param in params:
            log.warning("group %s: %s set in resources and rayStartParams; using resources", group, key)
        return _ceil(top[key], group, f"resources.{key}")
    if param in params:
        return _int_param(params, param, group)
    return None


def _cpus(
    top: Mapping[str, Any],
    params: Mapping[str, Any],
    limits: Mapping[str, Any],
    req: Mapping[str, Any],
    g: str,
) -> int:
    found = _first(top, params, "CPU", "num-cpus", g)
    if found is not None:
        return found
    for source in (limits, req):
        if "cpu" in source:
            return _ceil(source["cpu"], g, "container cpu")
    raise ConfigError(f"group {g}: no CPU count (set resources.CPU, rayStartParams.num-cpus or a cpu limit)")


def _tpus(
    top: Mapping[str, Any],
    custom: Mapping[str, int],
    limits: Mapping[str, Any],
    req: Mapping[str, Any],
    g: str,
) -> int | None:
    if "TPU" in top:
        return _ceil(top["TPU"], g, "resources.TPU")
    if "TPU" in custom:
        return custom["TPU"]
    for source in (limits, req):
        if source.get("google.com/tpu") is not None:
            count = _ceil(source["google.com/tpu"], g, "google.com/tpu")
            if count > 0:
                return count
    return None


def _custom_resources(top: Mapping[str, Any], params: Mapping[str, Any], group: str) -> dict[str, int]:
    """Custom resources: every non-standard top-level key when any top-level key is set (rayStartParams
    ``resources`` is then ignored), else the rayStartParams ``resources`` JSON (outer quotes and
    backslashes stripped; string → integer)."""
    if top:
        if "resources" in params:
            log.warning("group %s: custom resources in resources and rayStartParams; using resources", group)
        return {str(k): _ceil(v, group, f"resources.{k}") for k, v in top.items() if k not in _STANDARD}
    raw = params.get("resources")
    if raw is None:
        return {}
    try:
        parsed = json.loads(str(raw)[1:-1].replace("\\", ""))
    except ValueError:
        parsed = None
    ok = isinstance(parsed, dict) and all(type(v) is int for v in parsed.values())
    if not ok or not isinstance(parsed, dict):
        raise ConfigError(
            f"group {group}: rayStartParams.resources={raw!r} is not a quoted JSON map of name to integer "
            '(e.g. \'"{\\"Custom1\\": 1}"\')'
        )
    return {str(k): int(v) for k, v in parsed.items()}


def _tpu_head_resource(selector: Mapping[str, Any], group: str) -> str | None:
    """``TPU-<generation>-<cores>-head`` from the GKE TPU node selectors, or None."""
    topology, accelerator = selector.get(TPU_TOPOLOGY_SELECTOR), selector.get(TPU_ACCELERATOR_SELECTOR)
    if TPU_TOPOLOGY_SELECTOR not in selector or TPU_ACCELERATOR_SELECTOR not in selector:
        log.error("group %s: TPU pods need both %s and %s node selectors", group, *_TPU_SELECTORS)
        return None
    generation = TPU_GENERATIONS.get(str(accelerator)) if topology and accelerator else None
    if not generation:
        return None
    try:
        chips = math.prod(int(dim) for dim in str(topology).strip().lower().split("x"))
    except ValueError as exc:
        raise ConfigError(
            f"group {group}: nodeSelector {TPU_TOPOLOGY_SELECTOR}={topology!r} is not like 2x2x4"
        ) from exc
    cores = chips * (1 if generation.startswith(_SINGLE_CORE_TPUS) else 2)
    return f"TPU-{generation}-{cores}-head"


_TPU_SELECTORS = (TPU_TOPOLOGY_SELECTOR, TPU_ACCELERATOR_SELECTOR)
