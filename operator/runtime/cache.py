"""The operator's read side of its informer caches: objects by RayCluster.

The shared `rayside.runtime` informers know nothing about Ray; this module files every cached object under
the RayCluster it belongs to (its `ray.io/cluster` label, else its controlling RayCluster owner) and gives
the reconcilers `by_cluster(namespace, cluster)` on one informer (:class:`ClusterInformer`) or on several
per-namespace informers of one kind read as one cache (:class:`ClusterInformerGroup`).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any, Protocol

from ray_operator.constants import LABEL_CLUSTER
from rayside.objects import JSON, controller_of, labels_of, namespace_of
from rayside.runtime.informer import Informer, InformerGroup

BY_CLUSTER = "ray.io/cluster"


class Cache(Protocol):
    """The read side the reconcilers use (a ClusterInformer or a ClusterInformerGroup)."""

    def get(self, namespace: str, name: str) -> JSON | None: ...
    def by_cluster(self, namespace: str, cluster: str) -> builtins.list[JSON]: ...
    def observe(self, obj: JSON) -> None: ...


def cluster_of(obj: JSON) -> str | None:
    """The RayCluster an object belongs to: its `ray.io/cluster` label, else its RayCluster owner."""
    label = labels_of(obj).get(LABEL_CLUSTER)
    if label:
        return str(label)
    owner = controller_of(obj)
    if owner is not None and owner.get("kind") == "RayCluster":
        return str(owner.get("name"))
    return None


def cluster_index(obj: JSON) -> Iterable[str]:
    """The by-cluster index value of `obj`: `namespace/cluster`, or none."""
    cluster = cluster_of(obj)
    return (f"{namespace_of(obj)}/{cluster}",) if cluster else ()


class ClusterInformer(Informer):
    """An Informer with the by-RayCluster index."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_indexer(BY_CLUSTER, cluster_index)

    def by_cluster(self, namespace: str, cluster: str) -> builtins.list[JSON]:
        """Objects of `cluster` in `namespace`."""
        return self.by_index(BY_CLUSTER, f"{namespace}/{cluster}")


class ClusterInformerGroup(InformerGroup):
    """Several ClusterInformers of one kind read as one cache."""

    def __init__(self, informers: Iterable[ClusterInformer]) -> None:
        super().__init__(informers)

    def by_cluster(self, namespace: str, cluster: str) -> builtins.list[JSON]:
        return self.by_index(BY_CLUSTER, f"{namespace}/{cluster}")
