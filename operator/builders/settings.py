"""The one frozen settings value every builder takes (built once by the runtime from flags/env/config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ray_operator.constants import KUBERAY_VERSION
from ray_operator.features import FeatureGates

BatchScheduler = Literal["volcano", "yunikorn", "kai-scheduler", "scheduler-plugins"]
BATCH_SCHEDULERS: tuple[str, ...] = ("volcano", "yunikorn", "kai-scheduler", "scheduler-plugins")


@dataclass(frozen=True)
class BuildSettings:
    """Operator-wide knobs the pure builders need. Defaults equal KubeRay HEAD's defaults.

    Env-knob fields mirror KubeRay's operator env vars (named in each comment); the runtime reads them once.
    """

    cluster_domain: str = "cluster.local"  # CLUSTER_DOMAIN
    feature_gates: FeatureGates = field(default_factory=FeatureGates)  # --feature-gates
    batch_scheduler: BatchScheduler | None = None  # --batch-scheduler
    submitter_image: str | None = None  # None ⇒ the Ray head container image
    kuberay_version: str = KUBERAY_VERSION
    autoscaler_entrypoint: str = "python -m autoscaler_provider"  # KubeRay: `ray kuberay-autoscaler`
    enable_init_container_injection: bool = True  # ENABLE_INIT_CONTAINER_INJECTION
    enable_probes_injection: bool = True  # ENABLE_PROBES_INJECTION
    enable_login_shell: bool = False  # ENABLE_LOGIN_SHELL
    enable_head_cluster_ip_service: bool = False  # ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE
    default_container_envs: tuple[Mapping[str, Any], ...] = ()  # config defaultContainerEnvs
    default_pod_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    default_pod_annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    head_sidecar_containers: tuple[Mapping[str, Any], ...] = ()  # config headSidecarContainers
    worker_sidecar_containers: tuple[Mapping[str, Any], ...] = ()  # config workerSidecarContainers
    compat: Literal["head", "v1.5"] = "head"  # v1.5: literal `ulimit -n 65536`, exec probes only

    def shell(self) -> list[str]:
        """The container command KubeRay uses to run generated shell lines."""
        return ["/bin/bash", "-cl" if self.enable_login_shell else "-c", "--"]
