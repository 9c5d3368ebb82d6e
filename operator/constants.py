"""Literal values shared with KubeRay: label/annotation keys, env names, defaults."""

from __future__ import annotations

from typing import Final

GROUP: Final = "ray.io"
VERSION: Final = "v1"
API_VERSION: Final = "ray.io/v1"

MANAGED_BY_KUBERAY: Final = "ray.io/kuberay-operator"
MANAGED_BY_MULTIKUEUE: Final = "kueue.x-k8s.io/multikueue"

# Pod / object labels.
LABEL_IS_RAY_NODE: Final = "ray.io/is-ray-node"
LABEL_CLUSTER: Final = "ray.io/cluster"
LABEL_NODE_TYPE: Final = "ray.io/node-type"
LABEL_GROUP: Final = "ray.io/group"
LABEL_IDENTIFIER: Final = "ray.io/identifier"
LABEL_APP_NAME: Final = "app.kubernetes.io/name"
LABEL_CREATED_BY: Final = "app.kubernetes.io/created-by"
APP_NAME: Final = "kuberay"
CREATED_BY: Final = "kuberay-operator"
LABEL_SERVE: Final = "ray.io/serve"
LABEL_ORIGINATED_FROM_CR_NAME: Final = "ray.io/originated-from-cr-name"
LABEL_ORIGINATED_FROM_CRD: Final = "ray.io/originated-from-crd"
LABEL_JOB_SUBMISSION_MODE: Final = "ray.io/job-submission-mode"
LABEL_HEADLESS_WORKER_SVC: Final = "ray.io/headless-worker-svc"
LABEL_REPLICA_INDEX: Final = "ray.io/worker-group-replica-index"
LABEL_REPLICA_NAME: Final = "ray.io/worker-group-replica-name"
LABEL_HOST_INDEX: Final = "ray.io/replica-host-index"
LABEL_SCHEDULER_NAME: Final = "ray.io/scheduler-name"
LABEL_GANG_SCHEDULING: Final = "ray.io/gang-scheduling-enabled"
LABEL_PRIORITY_CLASS: Final = "ray.io/priority-class-name"
LABEL_KUEUE_QUEUE: Final = "kueue.x-k8s.io/queue-name"

NODE_TYPE_HEAD: Final = "head"
NODE_TYPE_WORKER: Final = "worker"
HEAD_GROUP: Final = "headgroup"
SUBMITTER_GROUP: Final = "submittergroup"

# Annotations.
ANN_FT_ENABLED: Final = "ray.io/ft-enabled"
ANN_OVERWRITE_CMD: Final = "ray.io/overwrite-container-cmd"
ANN_EXTERNAL_STORAGE_NS: Final = "ray.io/external-storage-namespace"
ANN_ENABLE_SERVE_SERVICE: Final = "ray.io/enable-serve-service"
ANN_DISABLE_PROVISIONED_HEAD_RESTART: Final = "ray.io/disable-provisioned-head-restart"
ANN_KUBERAY_VERSION: Final = "ray.io/kuberay-version"
ANN_UPGRADE_HASH: Final = "ray.io/upgrade-strategy-recreate-hash"

# Kinds.
KIND_RAYCLUSTER: Final = "RayCluster"
KIND_RAYJOB: Final = "RayJob"
KIND_RAYSERVICE: Final = "RayService"

# Ports and defaults.
DEFAULT_GCS_PORT: Final = 6379
DEFAULT_DASHBOARD_PORT: Final = 8265
DEFAULT_CLIENT_PORT: Final = 10001
DEFAULT_METRICS_PORT: Final = 8080
DEFAULT_SERVE_PORT: Final = 8000
DEFAULT_DASHBOARD_AGENT_PORT: Final = 52365
DEFAULT_HEAD_PORTS: Final[dict[str, int]] = {
    "client": DEFAULT_CLIENT_PORT,
    "gcs-server": DEFAULT_GCS_PORT,
    "dashboard": DEFAULT_DASHBOARD_PORT,
    "metrics": DEFAULT_METRICS_PORT,
    "serve": DEFAULT_SERVE_PORT,
}
MAX_INT32: Final = 2147483647
KUBERAY_VERSION: Final = "v1.7.0-rayside"

# Container names.
AUTOSCALER_CONTAINER: Final = "autoscaler"
SUBMITTER_CONTAINER: Final = "ray-job-submitter"
INIT_CONTAINER: Final = "wait-gcs-ready"

# Auth.
AUTH_TOKEN_KEY: Final = "auth_token"
ENV_AUTH_MODE: Final = "RAY_AUTH_MODE"
ENV_AUTH_TOKEN: Final = "RAY_AUTH_TOKEN"
MIN_TOKEN_AUTH_RAY_VERSION: Final = (2, 52, 0)
MIN_HTTP_PROBE_RAY_VERSION: Final = (2, 53, 0)

# Name limits.
MAX_RAYCLUSTER_NAME: Final = 53
MAX_RAYJOB_NAME: Final = 47
MAX_RAYSERVICE_NAME: Final = 47
