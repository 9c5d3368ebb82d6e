"""The RayService controller's Serve client (`HttpServeClient`) against the stub dashboard over HTTP: the
wire format (paths, query, JSON body, token header), Serve's refusal text, and that errors never carry the
token."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ray_operator.rayservice.dashboard import DashboardError, HttpServeClient
from tests.support.stubdashboard import StubDashboard

pytestmark = pytest.mark.api
TOKEN = "s3cret-token-value"


@pytest.fixture
def stub() -> Iterator[StubDashboard]:
    server = StubDashboard(token=TOKEN).start()
    yield server
    server.stop()


def test_put_then_get_applications(stub: StubDashboard) -> None:
    serve = HttpServeClient()
    url = f"http://{stub.address}"
    config = {"applications": [{"name": "app", "import_path": "model:app"}], "target_capacity": 50}
    serve.put_config(url, TOKEN, config)
    put = stub.recorded[-1]
    assert (put.method, put.path) == ("PUT", "/api/serve/applications/")
    assert json.loads(put.body) == config and put.headers["Content-Type"] == "application/json"
    assert put.headers["x-ray-authorization"] == f"Bearer {TOKEN}"
    assert serve.get_applications(url, TOKEN)["app"]["status"] == "DEPLOYING"
    assert serve.get_applications(url, TOKEN)["app"]["status"] == "RUNNING"
    assert stub.recorded[-1].path == "/api/serve/applications/?api_type=declarative"


def test_errors_carry_serves_answer_and_never_the_token(stub: StubDashboard) -> None:
    serve = HttpServeClient()
    url = f"http://{stub.address}"
    with pytest.raises(DashboardError) as refused:
        serve.put_config(url, TOKEN, {"applications": [{"name": "app"}]})
    assert str(refused.value) == "HTTP 400: Invalid config: applications.0.import_path: field required"
    with pytest.raises(DashboardError) as denied:
        serve.get_applications(url, "wrong-" + TOKEN)
    assert "401" in str(denied.value) and TOKEN not in str(denied.value)
    stub.stop()
    with pytest.raises(DashboardError) as gone:
        HttpServeClient().get_applications(url, TOKEN)  # a new connection: nobody listens any more
    assert str(gone.value).startswith("dashboard unreachable") and TOKEN not in str(gone.value)


def test_gateway_crds_are_created_once_and_never_replaced() -> None:
    from localkube.testing import running
    from ray_operator.rayservice.gatewaycrds import install_gateway_crds
    from rayside.objects import CRDS

    with running() as server:
        kube = server.kube_client()
        assert sorted(install_gateway_crds(kube)) == [
            "gateways.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io",
        ]
        path = CRDS.path(name="httproutes.gateway.networking.k8s.io")
        before = kube.get(path)["metadata"]["resourceVersion"]
        assert install_gateway_crds(kube) == []
        assert kube.get(path)["metadata"]["resourceVersion"] == before
