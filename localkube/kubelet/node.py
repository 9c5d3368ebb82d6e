"""Pure builders of the kubelet's Node object, its status and its `kube-node-lease` Lease."""

from __future__ import annotations

import os
import platform
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from localkube.kubelet.status import now_iso
from rayside.objects import JSON

KUBELET_VERSION = "v1.32.0-localkube"
LEASE_NAMESPACE = "kube-node-lease"


@dataclass(frozen=True)
class Machine:
    """Facts about this machine that end up in the Node status."""

    cpus: int
    memory_bytes: int
    hostname: str
    kernel: str
    arch: str
    boot_id: str


def read_machine() -> Machine:
    """Read CPU count, memory, hostname and kernel of this machine (I/O, done once)."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
    except OSError:
        boot_id = str(uuid.uuid4())
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return Machine(os.cpu_count() or 1, mem, socket.gethostname(), platform.release(), arch, boot_id)


def node_labels(node_name: str, machine: Machine, mode: str) -> dict[str, str]:
    return {
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": machine.arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": machine.arch,
        "node.kubernetes.io/instance-type": "localkube",
        "localkube.rayside.io/mode": mode,
    }


def node_status(
    machine: Machine, *, internal_ip: str, hostname: str, kubelet_port: int, max_pods: int, mode: str
) -> JSON:
    """Status of a Ready node with capacity/allocatable from the machine."""
    now = now_iso()
    capacity = {
        "cpu": str(machine.cpus),
        "memory": f"{machine.memory_bytes // 1024}Ki",
        "pods": str(max_pods),
        "ephemeral-storage": "100Gi",
    }

    def cond(ctype: str, status: str, reason: str, message: str) -> JSON:
        return {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "phase": "Running",
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": internal_ip},
            {"type": "Hostname", "address": hostname},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": machine.boot_id.replace("-", ""),
            "systemUUID": machine.boot_id,
            "bootID": machine.boot_id,
            "kernelVersion": machine.kernel,
            "osImage": f"localkube ({mode} kubelet)",
            "containerRuntimeVersion": f"localkube://{mode}",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": machine.arch,
        },
    }


def node_object(node_name: str, machine: Machine, mode: str, status: JSON) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node_name,
            "labels": node_labels(node_name, machine, mode),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": status,
    }


def micro_time(ts: float | None = None) -> str:
    moment = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_object(node_name: str, node_uid: str, duration: int) -> JSON:
    meta: JSON = {"name": node_name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": duration, "renewTime": micro_time()},
    }
