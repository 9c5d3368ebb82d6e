"""``meta.k8s.io/v1`` Table responses for ``kubectl get``: built-in kinds get kubectl's columns, custom
resources their ``additionalPrinterColumns`` (JSONPath subset), everything else ``Name, Created At``.

Pure: the current time is a parameter (defaults to now).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from localkube import jsonpath
from rayside.objects import JSON, is_deleting, labels_of, name_of

__all__ = [
    "BUILTIN_COLUMNS",
    "NAME_COLUMN",
    "human_duration",
    "parse_time",
    "row_cells",
    "table_columns",
    "table_for",
]


NAME_COLUMN: JSON = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}


# ---------------------------------------------------------------------------------------------------------
# time helpers
# ---------------------------------------------------------------------------------------------------------


def parse_time(value: Any) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp (``Z`` or offset, optional fraction); ``None`` when not a timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def human_duration(delta: dt.timedelta) -> str:
    """kubectl's age format: ``45s``, ``2m5s``, ``15m``, ``3h20m``, ``10h``, ``2d3h``, ``30d``, ``2y10d``."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m" if seconds % 60 == 0 else f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(obj: JSON, now: dt.datetime, value: Any = None) -> str:
    when = parse_time(value if value is not None else (obj.get("metadata") or {}).get("creationTimestamp"))
    return human_duration(now - when) if when else "<unknown>"


# ---------------------------------------------------------------------------------------------------------
# built-in kinds (columns as kubectl prints them)
# ---------------------------------------------------------------------------------------------------------


def _name(obj: JSON) -> str:
    return name_of(obj)


def _conds(obj: JSON) -> dict[str, str]:
    return {
        str(c.get("type")): str(c.get("status")) for c in (obj.get("status") or {}).get("conditions") or []
    }


def _terminated_reason(state: JSON, prefix: str = "") -> str:
    term = state.get("terminated") or {}
    if term.get("reason"):
        return prefix + str(term["reason"])
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _init_reason(spec: JSON, status: JSON) -> str | None:
    inits = spec.get("initContainers") or []
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if term is not None:
            return _terminated_reason(state, "Init:")
        waiting = (state.get("waiting") or {}).get("reason")
        if waiting and waiting != "PodInitializing":
            return f"Init:{waiting}"
        return f"Init:{i}/{len(inits)}"
    return None


def _pod_status(obj: JSON) -> tuple[str, int, int, str | None]:
    """(status text, ready containers, restarts, last restart time) — kubectl's printPod logic."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "")
    restarts = sum(int(cs.get("restartCount", 0) or 0) for cs in status.get("initContainerStatuses") or [])
    ready, last = 0, None
    init = _init_reason(spec, status)
    if init is not None:
        reason = init
    else:
        restarts, running = 0, False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount", 0) or 0)
            finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if finished and (last is None or finished > last):
                last = finished
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated") is not None:
                reason = _terminated_reason(state)
            elif cs.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running" if _conds(obj).get("Ready") == "True" else "NotReady"
    if is_deleting(obj):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts, last


def _pod_cells(obj: JSON, now: dt.datetime) -> list[Any]:
    reason, ready, restarts, last = _pod_status(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    restart_text = str(restarts) if not last else f"{restarts} ({_age(obj, now, last)} ago)"
    gates = spec.get("readinessGates") or []
    conds = _conds(obj)
    gate_text = f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}"
    return [
        _name(obj), f"{ready}/{len(spec.get('containers') or [])}", reason, restart_text, _age(obj, now),
        status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>", gate_text if gates else "<none>",
    ]  # fmt: skip


def _ports(spec: JSON) -> str:
    parts = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol", "TCP")
        parts.append(
            f"{p.get('port')}:{p['nodePort']}/{proto}" if p.get("nodePort") else f"{p.get('port')}/{proto}"
        )
    return ",".join(parts) or "<none>"


def _external_ip(obj: JSON) -> str:
    spec = obj.get("spec") or {}
    typ = spec.get("type", "ClusterIP")
    ips = list(spec.get("externalIPs") or [])
    if typ == "ExternalName":
        return str(spec.get("externalName", "<none>"))
    if typ == "LoadBalancer":
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ips = [str(i.get("ip") or i.get("hostname")) for i in ingress] + ips
        return ",".join(ips) or "<pending>"
    return ",".join(ips) or "<none>"


def _service_cells(obj: JSON, now: dt.datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [_name(obj), spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", _external_ip(obj),
            _ports(spec), _age(obj, now), selector]  # fmt: skip


def _job_status(obj: JSON) -> str:
    conds = _conds(obj)
    if is_deleting(obj):
        return "Terminating"
    for ctype in ("Complete", "Failed", "Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if conds.get(ctype) == "True":
            return ctype
    return "Running"


def _containers(pod_spec: JSON) -> tuple[str, str]:
    cs = pod_spec.get("containers") or []
    return ",".join(str(c.get("name", "")) for c in cs), ",".join(str(c.get("image", "")) for c in cs)


def _job_cells(obj: JSON, now: dt.datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = int(status.get("succeeded", 0) or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism", 1) or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start = parse_time(status.get("startTime"))
    end = parse_time(status.get("completionTime")) or now
    duration = human_duration(end - start) if start else ""
    names, images = _containers(((spec.get("template") or {}).get("spec")) or {})
    selector = ",".join(
        f"{k}={v}" for k, v in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items())
    )
    return [_name(obj), _job_status(obj), completions, duration, _age(obj, now), names, images, selector]


def _deployment_cells(obj: JSON, now: dt.datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(((spec.get("template") or {}).get("spec")) or {})
    return [_name(obj), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            int(status.get("updatedReplicas", 0) or 0), int(status.get("availableReplicas", 0) or 0),
            _age(obj, now), names, images]  # fmt: skip


def _replicaset_cells(obj: JSON, now: dt.datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [_name(obj), int(spec.get("replicas", 1)), int(status.get("replicas", 0) or 0),
            int(status.get("readyReplicas", 0) or 0), _age(obj, now)]  # fmt: skip


def _node_cells(obj: JSON, now: dt.datetime) -> list[Any]:
    ready = _conds(obj).get("Ready")
    status = {"True": "Ready", "False": "NotReady"}.get(str(ready), "Unknown")
    if (obj.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = labels_of(obj)
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    version = ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [_name(obj), status, ",".join(roles) or "<none>", _age(obj, now), version]


def _event_cells(obj: JSON, now: dt.datetime) -> list[Any]:
    inv = obj.get("involvedObject") or obj.get("regarding") or {}
    seen = (
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or (obj.get("metadata") or {}).get("creationTimestamp")
    )
    return [
        _age(obj, now, seen),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
        obj.get("message") or obj.get("note", ""),
    ]


def _simple(*fields: Callable[[JSON], Any]) -> Callable[[JSON, dt.datetime], list[Any]]:
    def cells(obj: JSON, now: dt.datetime) -> list[Any]:
        return [_name(obj), *(f(obj) for f in fields), _age(obj, now)]

    return cells


_N = "Name"
_AGE = (
    "Age",
    "string",
    0,
    "Time since creation.",
)
Spec = tuple[list[tuple[str, str, int, str]], Callable[[JSON, dt.datetime], list[Any]]]

BUILTIN_COLUMNS: dict[str, Spec] = {
    "Pod": ([(_N, "string", 0, ""), ("Ready", "string", 0, "Ready containers."),
             ("Status", "string", 0, "The aggregate status of the containers in this pod."),
             ("Restarts", "string", 0, "Container restarts and when the last one happened."),
             _AGE, ("IP", "string", 1, "IP address allocated to the pod."),
             ("Node", "string", 1, "Name of the Node this pod is assigned to."),
             ("Nominated Node", "string", 1, "Name of the node this pod is nominated to run on, if any."),
             ("Readiness Gates", "string", 1, "Pod readiness gates.")], _pod_cells),
    "Service": ([(_N, "string", 0, ""), ("Type", "string", 0, "Determines how the Service is exposed."),
                 ("Cluster-IP", "string", 0, "ClusterIP is the IP address of the service."),
                 ("External-IP", "string", 0, "External IP addresses of the service."),
                 ("Port(s)", "string", 0, "The ports that are exposed by this service."), _AGE,
                 ("Selector", "string", 1, "Pods that receive the traffic.")], _service_cells),
    "Job": ([(_N, "string", 0, ""), ("Status", "string", 0, "Status of the job."),
             ("Completions", "string", 0, "Succeeded pods of desired completions."),
             ("Duration", "string", 0, "Time required to complete the job."), _AGE,
             ("Containers", "string", 1, "Names of each container in the template."),
             ("Images", "string", 1, "Container images."),
             ("Selector", "string", 1, "Label query over pods.")], _job_cells),
    "Deployment": ([(_N, "string", 0, ""), ("Ready", "string", 0, "Number of the pod with ready state"),
                    ("Up-to-date", "integer", 0, "Pods with the desired template."),
                    ("Available", "integer", 0, "Available pods."),
                    _AGE, ("Containers", "string", 1, "Names of each container in the template."),
                    ("Images", "string", 1, "Container images.")], _deployment_cells),
    "ReplicaSet": ([(_N, "string", 0, ""), ("Desired", "integer", 0, "Number of desired pods."),
                    ("Current", "integer", 0, "Number of actual pods."),
                    ("Ready", "integer", 0, "Number of ready pods."),
                    _AGE], _replicaset_cells),
    "Node": ([(_N, "string", 0, ""), ("Status", "string", 0, "The status of the node"),
              ("Roles", "string", 0, "The roles of the node"), _AGE,
              ("Version", "string", 0, "Kubelet Version reported by the node.")], _node_cells),
    "Event": ([("Last Seen", "string", 0, "Time when last event occurred"),
               ("Type", "string", 0, "Type of this event."),
               ("Reason", "string", 0, "Reason is why the action was taken."),
               ("Object", "string", 0, "The object this Event is about."),
               ("Message", "string", 0, "Human-readable description.")], _event_cells),
    "ConfigMap": ([(_N, "string", 0, ""), ("Data", "integer", 0, "Number of data entries"), _AGE],
                  _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    "Secret": ([(_N, "string", 0, ""), ("Type", "string", 0, "The type of the secret"),
                ("Data", "integer", 0, "The number of entries in the data"), _AGE],
               _simple(lambda o: o.get("type", "Opaque"), lambda o: len(o.get("data") or {}))),
    "Namespace": ([(_N, "string", 0, ""), ("Status", "string", 0, "The status of the namespace"), _AGE],
                  _simple(lambda o: (o.get("status") or {}).get("phase", "Active"))),
    "ServiceAccount": ([(_N, "string", 0, ""), ("Secrets", "integer", 0, "The number of secrets"), _AGE],
                       _simple(lambda o: len(o.get("secrets") or []))),
    "Lease": ([(_N, "string", 0, ""), ("Holder", "string", 0, "The holder of the lease"), _AGE],
              _simple(lambda o: (o.get("spec") or {}).get("holderIdentity", ""))),
    "Endpoints": ([(_N, "string", 0, ""), ("Endpoints", "string", 0, "Endpoints"), _AGE],
                  _simple(lambda o: ",".join(f"{a.get('ip')}:{p.get('port')}" for s in o.get("subsets") or []
                                             for a in s.get("addresses") or [] for p in s.get("ports") or [])
                          or "<none>")),
}  # fmt: skip


_DEFAULT_CRD_COLUMN: JSON = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _column(name: str, typ: str, description: str = "", priority: int = 0, fmt: str = "") -> JSON:
    return {"name": name, "type": typ, "format": fmt, "description": description, "priority": priority}


def _age_column() -> JSON:
    return _column("Age", "date", "CreationTimestamp is a timestamp representing the server time when this "
                   "object was created.")  # fmt: skip


def table_columns(kind: str, printer_columns: list[JSON] | None) -> list[JSON]:
    """The ``columnDefinitions`` for ``kind`` (``printer_columns`` = a CRD version's printer columns)."""
    if printer_columns is not None:
        cols = [NAME_COLUMN]
        for pc in printer_columns or [_DEFAULT_CRD_COLUMN]:
            name, typ, desc = (
                str(pc.get("name", "")),
                str(pc.get("type", "string")),
                str(pc.get("description", "")),
            )
            cols.append(_column(name, typ, desc, int(pc.get("priority", 0) or 0), str(pc.get("format", ""))))
        return cols
    spec = BUILTIN_COLUMNS.get(kind)
    if spec is None:
        return [NAME_COLUMN, _column("Created At", "date", "Object creation timestamp")]
    return [
        NAME_COLUMN if name == "Name" else _column(name, typ, desc, prio) for name, typ, prio, desc in spec[0]
    ]


def _typed_cell(values: list[Any], typ: str, now: dt.datetime) -> Any:
    if not values:
        return None
    if typ == "date":
        when = parse_time(values[0])
        return human_duration(now - when) if when else None
    if typ == "integer":
        ok = isinstance(values[0], int) and not isinstance(values[0], bool)
        return values[0] if ok else None
    if typ == "number":
        ok = isinstance(values[0], int | float) and not isinstance(values[0], bool)
        return values[0] if ok else None
    if typ == "boolean":
        return values[0] if isinstance(values[0], bool) else None
    return " ".join(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in values)


def _crd_cells(obj: JSON, printer_columns: list[JSON], now: dt.datetime) -> list[Any]:
    cols = printer_columns or [_DEFAULT_CRD_COLUMN]
    cells: list[Any] = [name_of(obj)]
    for pc in cols:
        try:
            values = jsonpath.find(obj, str(pc.get("jsonPath", "")))
        except jsonpath.JsonPathError:
            values = []
        cells.append(_typed_cell(values, str(pc.get("type", "string")), now))
    return cells


def row_cells(obj: JSON, kind: str, printer_columns: list[JSON] | None, now: dt.datetime) -> list[Any]:
    """The cells of one row (first cell is the name)."""
    if printer_columns is not None:
        return _crd_cells(obj, printer_columns, now)
    spec = BUILTIN_COLUMNS.get(kind)
    name = name_of(obj)
    if spec is None:
        return [name, (obj.get("metadata") or {}).get("creationTimestamp")]
    cells_fn: Callable[[JSON, dt.datetime], list[Any]] = spec[1]
    return cells_fn(obj, now)


def _row_object(obj: JSON, include_object: str) -> JSON | None:
    if include_object == "Object":
        return obj
    if include_object == "None":
        return None
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table_for(
    objects: list[JSON],
    kind: str,
    printer_columns: list[JSON] | None,
    list_meta: JSON,
    *,
    now: dt.datetime | None = None,
    include_object: str = "Metadata",
) -> JSON:
    """Build a ``meta.k8s.io/v1`` Table of ``objects`` of ``kind``.

    ``printer_columns`` is the CRD version's ``additionalPrinterColumns`` (``[]`` for a CRD without any, which
    yields ``Name, Age``) or ``None`` for built-in kinds. ``include_object`` is the ``includeObject`` query
    parameter (``None``, ``Metadata`` (default) or ``Object``).
    """
    moment = now or dt.datetime.now(dt.UTC)
    rows = []
    for obj in objects:
        row: JSON = {"cells": row_cells(obj, kind, printer_columns, moment)}
        target = _row_object(obj, include_object)
        if target is not None:
            row["object"] = target
        rows.append(row)
    meta = {
        k: v for k, v in list_meta.items() if k in ("resourceVersion", "continue", "remainingItemCount") and v
    }
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": table_columns(kind, printer_columns),
        "rows": rows,
    }
