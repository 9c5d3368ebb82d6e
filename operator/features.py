"""KubeRay feature gates: names, defaults (KubeRay HEAD, v1.7), the `--feature-gates A=true,B=false` parser.

Defaults follow KubeRay HEAD: `RayClusterStatusConditions`, `RayJobDeletionPolicy`,
`RayMultiHostIndexing` and `RayServiceIncrementalUpgrade` are on; the post-1.5 alpha gates are off.
`FeatureGates.v1_5()` gives the v1.5.x defaults (deletion policy, multi-host indexing, incremental upgrade
off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

RAY_CLUSTER_STATUS_CONDITIONS: Final = "RayClusterStatusConditions"
RAY_JOB_DELETION_POLICY: Final = "RayJobDeletionPolicy"
RAY_MULTI_HOST_INDEXING: Final = "RayMultiHostIndexing"
RAY_SERVICE_INCREMENTAL_UPGRADE: Final = "RayServiceIncrementalUpgrade"

DEFAULTS: Final[Mapping[str, bool]] = MappingProxyType(
    {
        RAY_CLUSTER_STATUS_CONDITIONS: True,
        RAY_JOB_DELETION_POLICY: True,
        RAY_MULTI_HOST_INDEXING: True,
        RAY_SERVICE_INCREMENTAL_UPGRADE: True,
        "RayCronJob": False,
        "SidecarSubmitterRestart": False,
        "RayClusterNetworkPolicy": False,
        "GCSFaultToleranceEmbeddedStorage": False,
        "RayClusterMTLS": False,
        "RayClusterHistoryServer": False,
        "KubernetesWAS": False,
    }
)

V1_5_OVERRIDES: Final[Mapping[str, bool]] = MappingProxyType(
    {RAY_JOB_DELETION_POLICY: False, RAY_MULTI_HOST_INDEXING: False, RAY_SERVICE_INCREMENTAL_UPGRADE: False}
)


class FeatureGateError(ValueError):
    """A `--feature-gates` value names an unknown gate or is not `Name=true|false`."""


@dataclass(frozen=True)
class FeatureGates:
    """Immutable gate values; unknown names are rejected at parse time, so lookups never miss."""

    overrides: Mapping[str, bool] = field(default_factory=dict)

    def enabled(self, name: str) -> bool:
        """Whether gate `name` is on (an explicit override, else the HEAD default)."""
        if name in self.overrides:
            return self.overrides[name]
        return DEFAULTS[name]

    def as_dict(self) -> dict[str, bool]:
        """Every known gate with its effective value."""
        return {name: self.enabled(name) for name in DEFAULTS}

    @classmethod
    def parse(cls, text: str) -> FeatureGates:
        """Parse `A=true,B=false` (empty string ⇒ defaults). Raises FeatureGateError on bad input."""
        values: dict[str, bool] = {}
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip().lower()
            if not sep or value not in ("true", "false"):
                raise FeatureGateError(f"--feature-gates: {item!r} must be Name=true or Name=false")
            if name not in DEFAULTS:
                known = ", ".join(sorted(DEFAULTS))
                raise FeatureGateError(f"--feature-gates: unknown gate {name!r}; known gates: {known}")
            values[name] = value == "true"
        return cls(MappingProxyType(values))

    @classmethod
    def v1_5(cls) -> FeatureGates:
        """The defaults of KubeRay v1.5.x."""
        return cls(V1_5_OVERRIDES)
