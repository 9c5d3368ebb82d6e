"""Object metadata helpers shared by the builders (owner references)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray_operator.constants import API_VERSION


def owner_reference(meta: Mapping[str, Any], *, kind: str, api_version: str = API_VERSION) -> dict[str, Any]:
    """A controller ownerReference to the object with this metadata."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }
