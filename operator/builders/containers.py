"""Container-level pieces KubeRay injects: env, auth env, probes, ports, volumes,
the `wait-gcs-ready` init container. Each function returns a new value; inputs are never mutated."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ray_operator.builders.raystart import port_param
from ray_operator.constants import (
    AUTH_TOKEN_KEY,
    DEFAULT_DASHBOARD_AGENT_PORT,
    DEFAULT_DASHBOARD_PORT,
    DEFAULT_METRICS_PORT,
    ENV_AUTH_MODE,
    ENV_AUTH_TOKEN,
    INIT_CONTAINER,
)
from rayside.objects import JSON


def field_ref(path: str) -> JSON:
    """`valueFrom.fieldRef` of a Pod field."""
    return {"fieldRef": {"fieldPath": path}}


def env_value(name: str, value: str) -> JSON:
    """A literal env entry."""
    return {"name": name, "value": value}


def env_from_field(name: str, path: str) -> JSON:
    """An env entry read from a Pod field."""
    return {"name": name, "valueFrom": field_ref(path)}


def append_env(container: JSON, entries: Sequence[Mapping[str, Any]], *, if_absent: bool = True) -> None:
    """Append env entries to a (copied) container; with if_absent, skip names the container already has."""
    env: list[JSON] = container.setdefault("env", [])
    present = {e.get("name") for e in env}
    for entry in entries:
        if if_absent and entry.get("name") in present:
            continue
        env.append(dict(copy.deepcopy(entry)))
        present.add(entry.get("name"))


def auth_env(secret_name: str) -> list[JSON]:
    """`RAY_AUTH_MODE=token` + `RAY_AUTH_TOKEN` from the auth Secret (the token never appears literally)."""
    return [
        env_value(ENV_AUTH_MODE, "token"),
        {"name": ENV_AUTH_TOKEN, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": AUTH_TOKEN_KEY}}},
    ]


K8S_TOKEN_VOLUME = "ray-token"
K8S_TOKEN_MOUNT = "/var/run/secrets/ray.io/serviceaccount"


def cluster_auth_env(*, enabled: bool, k8s_token: bool, secret_name: str) -> list[JSON]:
    """Auth env of a Ray/autoscaler/submitter container: [] when token auth is off; with
    `enableK8sTokenAuth` the projected service-account token replaces the Secret."""
    if not enabled:
        return []
    if k8s_token:
        return [env_value(ENV_AUTH_MODE, "token"), env_value("RAY_ENABLE_K8S_TOKEN_AUTH", "true")]
    return auth_env(secret_name)


def add_k8s_token_volume(pod_spec: JSON, container: JSON) -> None:
    """Projected service-account token volume `ray-token` for `enableK8sTokenAuth`."""
    volume = {
        "name": K8S_TOKEN_VOLUME,
        "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
    }
    pod_spec.setdefault("volumes", []).append(volume)
    container.setdefault("volumeMounts", []).append(
        {"name": K8S_TOKEN_VOLUME, "mountPath": K8S_TOKEN_MOUNT, "readOnly": True}
    )


def ensure_port(container: JSON, name: str, port: int) -> None:
    """Append a container port unless one with this name exists."""
    ports: list[JSON] = container.setdefault("ports", [])
    if not any(p.get("name") == name for p in ports):
        ports.append({"containerPort": port, "name": name, "protocol": "TCP"})


def add_metrics_port(container: JSON) -> None:
    """KubeRay appends `metrics:8080` when no port is named `metrics`."""
    ensure_port(container, "metrics", DEFAULT_METRICS_PORT)


def add_shared_memory(pod_spec: JSON, container: JSON, ray_start_params: Mapping[str, str]) -> None:
    """emptyDir `shared-mem` (Memory) at /dev/shm unless plasma-directory is set or /dev/shm mounted."""
    mounts: list[JSON] = container.setdefault("volumeMounts", [])
    if "plasma-directory" in ray_start_params or any(m.get("mountPath") == "/dev/shm" for m in mounts):
        if not mounts:
            container.pop("volumeMounts")
        return
    resources = container.get("resources") or {}
    size = (resources.get("limits") or {}).get("memory") or (resources.get("requests") or {}).get("memory")
    empty_dir: JSON = {"medium": "Memory"}
    if size is not None:
        empty_dir["sizeLimit"] = size
    pod_spec.setdefault("volumes", []).append({"name": "shared-mem", "emptyDir": empty_dir})
    mounts.append({"name": "shared-mem", "mountPath": "/dev/shm"})


def add_ray_logs_volume(pod_spec: JSON, containers: Sequence[JSON]) -> None:
    """emptyDir `ray-logs` mounted at /tmp/ray in the given containers (head with autoscaling)."""
    if not any(v.get("name") == "ray-logs" for v in pod_spec.get("volumes", [])):
        pod_spec.setdefault("volumes", []).append({"name": "ray-logs", "emptyDir": {}})
    for container in containers:
        mounts: list[JSON] = container.setdefault("volumeMounts", [])
        if not any(m.get("mountPath") == "/tmp/ray" for m in mounts):
            mounts.append({"name": "ray-logs", "mountPath": "/tmp/ray"})


def _exec_probe_command(*, is_head: bool, agent_port: int, dashboard_port: int) -> list[str]:
    check = (
        f"wget --tries 1 -T 2 -q -O- http://localhost:{agent_port}/api/local_raylet_healthz | grep success"
    )
    if is_head:
        gcs = f"http://localhost:{dashboard_port}/api/gcs_healthz"
        check += f" && wget --tries 1 -T 10 -q -O- {gcs} | grep success"
    return ["bash", "-c", check]


def probe_handler(*, is_head: bool, http: bool, params: Mapping[str, str]) -> JSON:
    """HTTP GET `/api/healthz` on the agent port (Ray ≥ 2.53.0), else KubeRay's exec wget check."""
    agent_port = port_param(params, "dashboard-agent-listen-port", DEFAULT_DASHBOARD_AGENT_PORT)
    if http:
        return {"httpGet": {"path": "/api/healthz", "port": agent_port}}
    dashboard_port = port_param(params, "dashboard-port", DEFAULT_DASHBOARD_PORT)
    command = _exec_probe_command(is_head=is_head, agent_port=agent_port, dashboard_port=dashboard_port)
    return {"exec": {"command": command}}


def _serve_readiness(params: Mapping[str, str], serve_port: int) -> JSON:
    agent_port = port_param(params, "dashboard-agent-listen-port", DEFAULT_DASHBOARD_AGENT_PORT)
    check = (
        f"wget --tries 1 -T 2 -q -O- http://localhost:{agent_port}/api/local_raylet_healthz | grep success"
        f" && wget --tries 1 -T 2 -q -O- http://localhost:{serve_port}/-/healthz | grep success"
    )
    return {"exec": {"command": ["bash", "-c", check]}}


def add_probes(
    container: JSON, *, is_head: bool, http: bool, params: Mapping[str, str], serve_port: int | None = None
) -> None:
    """Fill the liveness/readiness probes the user left unset, with KubeRay's timings. serve_port: RayService
    worker ⇒ readiness also checks Serve's `/-/healthz` (exec) with failureThreshold 1."""
    timeout = 5 if is_head else 2
    handler = probe_handler(is_head=is_head, http=http, params=params)
    if container.get("livenessProbe") is None:
        container["livenessProbe"] = {
            **copy.deepcopy(handler),
            "initialDelaySeconds": 30,
            "timeoutSeconds": timeout,
            "periodSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 120,
        }
    if container.get("readinessProbe") is None:
        serve = serve_port is not None and not is_head
        container["readinessProbe"] = {
            **(_serve_readiness(params, serve_port) if serve and serve_port else copy.deepcopy(handler)),
            "initialDelaySeconds": 10,
            "timeoutSeconds": timeout,
            "periodSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 1 if serve else 10,
        }


def wait_gcs_ready_script(address: str) -> str:
    """Shell loop of `wait-gcs-ready`: poll `ray health-check` every 5 s (quiet for the first 120 s)."""
    check = f"ray health-check --address {address}"
    return (
        "SECONDS=0; while true; do "
        f"if (( SECONDS <= 120 )); then if {check} > /dev/null 2>&1; then echo 'GCS is ready.'; break; fi; "
        f'echo "$SECONDS s: waiting for the GCS at {address}"; '
        f"else if {check}; then echo 'GCS is ready.'; break; fi; "
        f'echo "$SECONDS s: still waiting for the GCS at {address}"; fi; '
        "sleep 5; done"
    )


def wait_gcs_ready_container(ray_container: Mapping[str, Any], *, address: str, shell: list[str]) -> JSON:
    """The worker init container: Ray image, env/mounts/securityContext of the Ray container, 200m/256Mi."""
    container: JSON = {
        "name": INIT_CONTAINER,
        "image": ray_container.get("image"),
        "imagePullPolicy": ray_container.get("imagePullPolicy", "IfNotPresent"),
        "command": list(shell),
        "args": [wait_gcs_ready_script(address)],
        "resources": {
            "limits": {"cpu": "200m", "memory": "256Mi"},
            "requests": {"cpu": "200m", "memory": "256Mi"},
        },
    }
    for key in ("env", "volumeMounts", "securityContext"):
        if ray_container.get(key):
            container[key] = copy.deepcopy(ray_container[key])
    return container
