"""Minimal Gateway API CRDs (`Gateway`, `HTTPRoute` in `gateway.networking.k8s.io/v1`) for local clusters.

The incremental upgrade of a RayService writes these kinds. A real cluster gets the upstream CRDs with its
Gateway implementation; localkube and tests get the small structural ones shipped in
`manifests/gateway-api/`. `install_gateway_crds` only creates what is missing: it never replaces a CRD
that is already there (that would swap the upstream schema for ours).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from rayside.kubeclient import AlreadyExists, KubeClient
from rayside.objects import CRDS, JSON

GATEWAY_CRD_DIR = Path(__file__).resolve().parent.parent / "manifests" / "gateway-api"
log = logging.getLogger(__name__)


def gateway_crd_documents() -> list[JSON]:
    docs: list[JSON] = []
    for entry in sorted(GATEWAY_CRD_DIR.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(entry.read_text()) if d]
    return docs


def install_gateway_crds(client: KubeClient) -> list[str]:
    """Create the Gateway and HTTPRoute CRDs that do not exist yet; returns the names created."""
    created: list[str] = []
    for crd in gateway_crd_documents():
        name = str(crd["metadata"]["name"])
        try:
            client.create(CRDS.path(), crd)
        except AlreadyExists:
            continue
        log.info("installed CRD %s", name)
        created.append(name)
    return created
