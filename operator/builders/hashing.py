"""The spec hash KubeRay uses to detect cluster-level changes (RayService rollouts, RayCluster Recreate)."""

from __future__ import annotations

import base64
import hashlib
import json

from ray_operator.models import RayClusterSpec

_POD_SPEC_IGNORED = ("tolerations", "schedulingGates")


def spec_hash(spec: RayClusterSpec) -> str:
    """Hash of a cluster spec ignoring replicas/min/max/workersToDelete, tolerations, schedulingGates,
    upgradeStrategy and suspend (so autoscaling and Kueue edits do not trigger a rollout)."""
    data = spec.model_dump(by_alias=True, exclude_unset=True, mode="json")
    data.pop("upgradeStrategy", None)
    data.pop("suspend", None)
    templates = [data.get("headGroupSpec", {}).get("template") or {}]
    for group in data.get("workerGroupSpecs") or []:
        for key in ("replicas", "minReplicas", "maxReplicas", "scaleStrategy"):
            group.pop(key, None)
        templates.append(group.get("template") or {})
    for template in templates:
        pod_spec = template.get("spec") or {}
        for key in _POD_SPEC_IGNORED:
            pod_spec.pop(key, None)
    digest = hashlib.sha1(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=")
