"""The Ray auth-token Secret (`authOptions.mode: token`).

The caller supplies the random bytes (`token_bytes(32)`).
"""

from __future__ import annotations

import base64
from typing import Any

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders.meta import owner_reference
from ray_operator.models import RayCluster

TOKEN_BYTES = 32


def needs_auth_secret(cluster: RayCluster) -> bool:
    """KubeRay creates the Secret when authOptions is present, mode ≠ disabled, no secretName, no k8s auth."""
    auth = cluster.spec.auth_options
    if auth is None or auth.mode == "disabled":
        return False
    return not auth.secret_name and not auth.enable_k8s_token_auth


def auth_secret(cluster: RayCluster, token: bytes) -> dict[str, Any]:
    """Secret `CheckName(<cluster>)`, `stringData.auth_token` = base64 of token (44 chars for 32 bytes)."""
    meta = cluster.metadata
    cluster_name = str(meta.get("name", ""))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": names.check_name(cluster_name),
            "namespace": str(meta.get("namespace") or "default"),
            "labels": {c.LABEL_CLUSTER: cluster_name},
            "ownerReferences": [owner_reference(meta, kind=c.KIND_RAYCLUSTER)],
        },
        "stringData": {c.AUTH_TOKEN_KEY: base64.b64encode(token).decode("ascii")},
    }
