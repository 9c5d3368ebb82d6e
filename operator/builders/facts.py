"""Cluster-level facts every builder derives the same way (head address, auth, autoscaling)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ray_operator.builders import names
from ray_operator.builders.containers import cluster_auth_env
from ray_operator.builders.raystart import head_port
from ray_operator.builders.settings import BuildSettings
from ray_operator.constants import ANN_FT_ENABLED, KIND_RAYCLUSTER, LABEL_ORIGINATED_FROM_CRD
from ray_operator.models import RayCluster


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """`2.52.0` / `2.52` / `2.52.0rc1` → (2, 52, 0); None when unparseable."""
    if not text:
        return None
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        return None
    return tuple(int(part) for part in match.groups(default="0"))


@dataclass(frozen=True)
class ClusterFacts:
    """Derived, immutable facts about one RayCluster."""

    name: str
    namespace: str
    uid: str
    head_service: str
    head_fqdn: str
    head_port: int
    autoscaling: bool
    autoscaler_v2: bool | None  # None: version not set explicitly
    auth_enabled: bool
    auth_secret: str
    k8s_token_auth: bool
    ft_enabled: bool
    origin_crd: str  # RayCluster | RayJob | RayService
    ray_version: tuple[int, ...] | None

    @property
    def head_address(self) -> str:
        """`<fqdn>:<port>` of the GCS."""
        return f"{self.head_fqdn}:{self.head_port}"

    def auth_env(self) -> list[dict[str, Any]]:
        """Auth env for Ray, init, autoscaler and submitter containers ([] without token auth)."""
        return cluster_auth_env(
            enabled=self.auth_enabled, k8s_token=self.k8s_token_auth, secret_name=self.auth_secret
        )

    def ray_at_least(self, version: tuple[int, ...]) -> bool:
        """Whether rayVersion is set and ≥ version."""
        return self.ray_version is not None and self.ray_version >= version


def cluster_facts(cluster: RayCluster, settings: BuildSettings) -> ClusterFacts:
    """Compute the facts of a cluster."""
    spec = cluster.spec
    meta = cluster.metadata
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "default")
    head_svc = names.head_service_name(cluster)
    autoscaling = bool(spec.enable_in_tree_autoscaling)
    version = spec.autoscaler_options.version if spec.autoscaler_options else None
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    return ClusterFacts(
        name=name,
        namespace=namespace,
        uid=str(meta.get("uid", "")),
        head_service=head_svc,
        head_fqdn=names.fqdn(head_svc, namespace, settings.cluster_domain),
        head_port=head_port(spec.head_group_spec.ray_start_params),
        autoscaling=autoscaling,
        autoscaler_v2=(version == "v2") if (autoscaling and version) else None,
        auth_enabled=spec.auth_options is not None and spec.auth_options.mode == "token",
        auth_secret=names.auth_secret_name(cluster),
        k8s_token_auth=spec.auth_options is not None and bool(spec.auth_options.enable_k8s_token_auth),
        ft_enabled=spec.gcs_fault_tolerance_options is not None
        or str(annotations.get(ANN_FT_ENABLED, "")).lower() == "true",
        origin_crd=str(labels.get(LABEL_ORIGINATED_FROM_CRD, KIND_RAYCLUSTER)),
        ray_version=parse_version(spec.ray_version),
    )
