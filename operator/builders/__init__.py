"""Pure builders of the Kubernetes objects the operator owns — the API the reconcilers code against.

Every function is pure: typed models + a frozen `BuildSettings` in, plain k8s dicts out (deep copies; inputs
are never mutated); no clocks, no randomness, no I/O. Callers inject names/suffixes/tokens.

RayCluster children (`cluster: RayCluster`, a parsed model; `settings: BuildSettings`):
  head_pod(cluster, *, settings, name=None) -> dict
      name=None ⇒ `metadata.generateName = "<cluster>-head-"` (API server adds 5 chars); pass
      `name=names.head_pod_prefix(c) + suffix` (or `names.deterministic_head_pod_name`) to fix it.
  worker_pod(cluster, group: WorkerGroupSpec, *, settings, name=None, replica_index=None,
             replica_name=None, host_index=None) -> dict
      name=None ⇒ generateName `<cluster>-<group>-worker-`. Multi-host labels
      (`ray.io/worker-group-replica-index`; with numOfHosts>1 also `-replica-name` =
      names.replica_name(group, rand5) and `ray.io/replica-host-index`) are set from the given values when
      gate RayMultiHostIndexing is on.
  Both raise RayStartConflict (KubeRay's message) when group resources/labels clash with rayStartParams;
  validation.validate_raycluster reports it first, so a validated cluster never raises. Neither adds
  batch-scheduler metadata: callers stamp through `ray_operator.schedulers.stamp`.
  head_service(cluster, *, settings) -> dict          `<cluster>-head-svc`, headless by default
  headless_worker_service(cluster, *, settings) -> dict  `<cluster>-headless` (if needs_headless_service)
  serve_service(cluster, *, settings) -> dict         `<cluster>-serve-svc` iff wants_serve_service(cluster)
                                                      (raises ServePortMissing)
  head_ingress(cluster) -> dict                       `<cluster>-head-ingress` iff wants_ingress(cluster)
  redis_cleanup_job(cluster, *, settings) -> dict     `<cluster>-redis-cleanup` batch/v1 Job (GCS-FT Redis)
  auth_secret(cluster, token: bytes) -> dict          create iff needs_auth_secret(cluster); token =
                                                      secrets.token_bytes(TOKEN_BYTES)
  autoscaler_rbac(cluster, *, settings) -> list[dict] [ServiceAccount, Role, RoleBinding] iff autoscaling
                                                      (no ServiceAccount when the head template names one)
  ray_start_command(cluster, group=None, *, settings) -> str   the exact `ray start` line (head if group None)
  cluster_facts(cluster, settings) -> ClusterFacts    head FQDN/port, auth, autoscaling... (derived once)
RayJob children (ray_operator.builders.rayjob; `job: RayJob`):
  rayjob_cluster(job, *, name, job_id, settings) -> dict   the owned RayCluster (SidecarMode: + submitter
                                                      container, head restartPolicy Never); raises ValueError
                                                      without rayClusterSpec
  submitter_job(job, *, cluster, job_id, dashboard_url, settings) -> dict   K8sJobMode batch/v1 Job `<rayjob>`
  rayjob_head_service(job, cluster, *, settings) -> dict  `<rayjob>-head-svc` selecting the cluster's head
  submit_command(job, *, job_id, address, sidecar=False) -> str; http_submit_body(job, *, job_id) -> dict
  submitter_resources(job, settings) -> Totals         (Volcano/YuniKorn submitter share)
RayService children (ray_operator.builders.rayservice; `service: RayService`):
  rayservice_cluster(service, *, name, settings, pending_incremental=False) -> dict  (+ spec-hash annotation)
  rayservice_head_service(service, cluster, *, settings) / rayservice_serve_service(service, *, cluster_name,
  name=None) / gateway(service) / http_route(service, [(cluster_name, weight), ...]); spec_hash(spec) -> str
Batch schedulers live in ray_operator.schedulers (one `BatchScheduler` protocol, a registry by name); they
  import these builders' pure helpers, never the other way round.
Resources: ray_operator.builders.resources is the one place for template resources, replica counts
  (KubeRay's clamp), numOfHosts, GPU/TPU accounting (status desired*, PodGroups, ray start).
Names: ray_operator.builders.names (KubeRay naming, CheckName, RAND_ALPHABET for suffixes).
"""

from __future__ import annotations

from typing import Any

from ray_operator.builders import names
from ray_operator.builders.auth import TOKEN_BYTES, auth_secret, needs_auth_secret
from ray_operator.builders.autoscaler import (
    autoscaler_container,
    autoscaler_role,
    autoscaler_role_binding,
    autoscaler_service_account,
)
from ray_operator.builders.facts import ClusterFacts, cluster_facts, parse_version
from ray_operator.builders.hashing import spec_hash
from ray_operator.builders.ingress import head_ingress, wants_ingress
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.pods import base_labels, head_pod, multi_host_labels, worker_pod
from ray_operator.builders.rayjob import (
    http_submit_body,
    rayjob_cluster,
    rayjob_head_service,
    submit_command,
    submitter_job,
    submitter_resources,
)
from ray_operator.builders.rayservice import (
    gateway,
    http_route,
    rayservice_cluster,
    rayservice_head_service,
    rayservice_serve_service,
)
from ray_operator.builders.raystart import GroupStart, RayStartConflict, ray_start_params, render_ray_start
from ray_operator.builders.redis_cleanup import redis_cleanup_job
from ray_operator.builders.services import (
    ServePortMissing,
    head_service,
    headless_worker_service,
    needs_headless_service,
    serve_service,
    wants_serve_service,
)
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster, WorkerGroupSpec


def autoscaler_rbac(cluster: RayCluster, *, settings: BuildSettings) -> list[dict[str, Any]]:
    """[ServiceAccount, Role, RoleBinding] for the autoscaler, or [] without in-tree autoscaling. When the
    head Pod template names a serviceAccountName the user owns that account: only Role + RoleBinding."""
    facts = cluster_facts(cluster, settings)
    if not facts.autoscaling:
        return []
    objects = [autoscaler_role(cluster, facts=facts), autoscaler_role_binding(cluster, facts=facts)]
    if not (cluster.spec.head_group_spec.template.get("spec") or {}).get("serviceAccountName"):
        objects.insert(0, autoscaler_service_account(cluster, facts=facts))
    return objects


def ray_start_command(
    cluster: RayCluster, group: WorkerGroupSpec | None = None, *, settings: BuildSettings
) -> str:
    """The exact `ray start` line of the head (group None) or of a worker group."""
    facts = cluster_facts(cluster, settings)
    spec = group if group is not None else cluster.spec.head_group_spec
    containers = (spec.template.get("spec") or {}).get("containers") or [{}]
    start = GroupStart(
        group_label=group.group_name if group is not None else "Head",
        is_head=group is None,
        ray_start_params=spec.ray_start_params or {},
        resources=spec.resources or {},
        labels=spec.labels or {},
        container=containers[0],
        head_address=facts.head_address,
        autoscaling=facts.autoscaling,
    )
    return render_ray_start(ray_start_params(start), is_head=group is None)


__all__ = [
    "TOKEN_BYTES",
    "BuildSettings",
    "ClusterFacts",
    "GroupStart",
    "RayStartConflict",
    "ServePortMissing",
    "auth_secret",
    "autoscaler_container",
    "autoscaler_rbac",
    "base_labels",
    "cluster_facts",
    "gateway",
    "head_ingress",
    "head_pod",
    "head_service",
    "headless_worker_service",
    "http_route",
    "http_submit_body",
    "multi_host_labels",
    "names",
    "needs_auth_secret",
    "needs_headless_service",
    "owner_reference",
    "parse_version",
    "ray_start_command",
    "rayjob_cluster",
    "rayjob_head_service",
    "rayservice_cluster",
    "rayservice_head_service",
    "rayservice_serve_service",
    "redis_cleanup_job",
    "serve_service",
    "spec_hash",
    "submit_command",
    "submitter_job",
    "submitter_resources",
    "wants_ingress",
    "wants_serve_service",
    "worker_pod",
]
