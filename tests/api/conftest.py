"""Fixtures for API tests against localkube over HTTP: a fresh server per test, clients, kubectl, a CRD."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localkube.cluster import LocalKube
from localkube.testing import running
from tests.support.kube import wait_for

__all__ = ["WIDGET_CRD", "Kubectl", "create_widget_crd", "wait_for", "widget"]

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "readyReplicas": {"type": "integer"},
                                    "selector": {"type": "string"},
                                },
                            },
                        },
                    }
                },
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.readyReplicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": [{"name": "Color", "type": "string", "jsonPath": ".spec.color"}],
            }
        ],
    },
}


@dataclass
class Kubectl:
    kubeconfig: Path
    home: Path

    def _env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), "--request-timeout=30s", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env(),
        )

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    """A fresh plain-HTTP server (anonymous access), no controllers, no kubelet."""
    with running(bookmark_interval=1.0) as server:
        yield server


@pytest.fixture
def lk_tls() -> Iterator[LocalKube]:
    """A fresh HTTPS server that requires a bearer token (written into its kubeconfig)."""
    with running(https=True, token="test-token-123", bookmark_interval=1.0) as server:
        yield server


@pytest.fixture
def api(lk: LocalKube) -> Any:
    return lk.api_client()


@pytest.fixture
def kubectl(lk_tls: LocalKube, tmp_path: Path) -> Kubectl:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    return Kubectl(lk_tls.kubeconfig, tmp_path / "home")


def create_widget_crd(api_client: Any) -> dict[str, Any]:
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api_client)
    crd = api_client.sanitize_for_serialization(ext.create_custom_resource_definition(WIDGET_CRD))
    return dict(crd)


@pytest.fixture
def widgets(lk: LocalKube, api: Any) -> Any:
    """The Widget CRD installed on `lk`; returns a CustomObjectsApi."""
    from kubernetes import client

    create_widget_crd(api)
    return client.CustomObjectsApi(api)


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}
