"""The RayJob controller of `rayside operator` against localkube (simulated kubelet) and a stub dashboard.

The operator runs in-process on a thread with both controllers; its Ray dashboard client does real HTTP,
resolved to `JobsStub` (a small job API whose answers the test sets) instead of the head Service. The
simulated kubelet runs the submitter Job's Pod for `job_run_seconds` and exits 0 (or as the Pod's
`localkube.rayside.io/exit-code` annotation says); localkube's Job controller then marks the Job Complete.
Tests act and observe only through the Kubernetes API and the stub's records.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import _client, install_crds
from ray_operator.raycluster.assembly import RayClusterOperator, build_operator
from ray_operator.rayjob.dashboard import DashboardClient
from ray_operator.settings import load_settings
from tests.support import kube

pytestmark = pytest.mark.api
NS = "default"
Obj = dict[str, Any]


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    return kube.wait_for(check, timeout, what, interval=0.1)


# -- a Ray dashboard job API whose answers the test sets ---------------------------------------------------
@dataclass
class JobsStub:
    """`GET /api/jobs/<id>`, `POST /api/jobs/`, `POST /api/jobs/<id>/stop`. Ids in `jobs` are known; with
    `known_by_default` any id reads as `default_status` (a submitter that submitted it unseen)."""

    known_by_default: bool = True
    default_status: str = "RUNNING"
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)
    submissions: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> JobsStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                stub.tokens.append(self.headers.get("X-Ray-Authorization", ""))
                parts = self.path.strip("/").split("/")
                job = stub.get(parts[2]) if len(parts) == 3 and parts[:2] == ["api", "jobs"] else None
                self._answer(200, job) if job is not None else self._answer(404, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.strip("/").split("/")
                if self.path == "/api/jobs/":
                    sid = json.loads(body)["submission_id"]
                    with stub.lock:
                        stub.submissions.append(sid)
                        if sid in stub.jobs:
                            self._answer(400, {"error": f"Job with submission_id {sid} already exists."})
                            return
                        stub.jobs[sid] = {"submission_id": sid, "status": "PENDING", "message": ""}
                    self._answer(200, {"job_id": sid, "submission_id": sid})
                elif len(parts) == 4 and parts[3] == "stop":
                    stub.set(parts[2], "STOPPED", "Job was intentionally stopped.")
                    self._answer(200, {"stopped": True})
                else:
                    self._answer(404, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def get(self, sid: str) -> dict[str, Any] | None:
        with self.lock:
            if sid in self.forgotten:
                return None
            if sid not in self.jobs and self.known_by_default:
                return {"submission_id": sid, "status": self.default_status, "message": ""}
            return self.jobs.get(sid)

    def set(self, sid: str, status: str, message: str = "") -> None:
        with self.lock:
            self.jobs[sid] = {"submission_id": sid, "status": status, "message": message}

    def forget(self, sid: str) -> None:
        with self.lock:
            self.forgotten.add(sid)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class OperatorThread:
    """`rayside operator` in-process with its dashboard client pointed at `stub`."""

    def __init__(self, lk: LocalKube, stub: JobsStub, *flags: str) -> None:
        self.settings = load_settings(
            ["--kubeconfig", str(lk.kubeconfig), "--rayjob-requeue-seconds", "0.5", *flags], environ={}
        )
        self.client = _client(str(lk.kubeconfig), None, qps=200, burst=400)
        dashboard = DashboardClient(resolve=lambda _address: stub.address)
        self.operator: RayClusterOperator = build_operator(self.client, self.settings, dashboard=dashboard)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: self.operator.run(self._stop), daemon=True)

    def start(self) -> OperatorThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    options = {"ready_delay": 0.2, "job_run_seconds": 2.0}
    with running(
        bookmark_interval=1.0, kubelet="simulated", kubelet_options=options, controllers=True
    ) as server:
        install_crds(server.kube_client())
        yield server


@pytest.fixture
def stub() -> Iterator[JobsStub]:
    server = JobsStub().start()
    yield server
    server.stop()


@pytest.fixture
def operator(lk: LocalKube, stub: JobsStub) -> Iterator[OperatorThread]:
    op = OperatorThread(
        lk, stub, "--reconcile-concurrency", "2", "--feature-gates", "RayJobDeletionPolicy=true"
    )
    op.start()
    yield op
    op.stop()


class Api:
    def __init__(self, lk: LocalKube) -> None:
        self.kubeconfig = lk.kubeconfig
        api_client = lk.api_client()
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.crs = client.CustomObjectsApi(api_client)

    def create(self, body: Obj) -> Obj:
        return dict(self.crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", body))

    def get(self, name: str = "job") -> Obj:
        return dict(self.crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", name))

    def status(self, name: str = "job") -> Obj:
        return dict(self.get(name).get("status") or {})

    def patch(self, body: Obj, name: str = "job") -> Obj:
        return dict(self.crs.patch_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", name, body))

    def cluster(self, name: str) -> Obj | None:
        try:
            return dict(self.crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def clusters(self) -> list[Obj]:
        items = self.crs.list_namespaced_custom_object("ray.io", "v1", NS, "rayclusters")["items"]
        return [dict(item) for item in items if not item["metadata"].get("deletionTimestamp")]

    def exists(self, name: str = "job") -> bool:
        try:
            self.get(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def deployment(self, name: str = "job") -> str:
        return str(self.status(name).get("jobDeploymentStatus") or "")

    def reasons(self) -> set[str]:
        return {e.reason for e in self.core.list_namespaced_event(NS).items}


def kubectl(api: Api, *args: str) -> str:
    """`kubectl` against the test's localkube (its stdout)."""
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(api.kubeconfig), "-n", NS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


@pytest.fixture
def api(lk: LocalKube) -> Api:
    return Api(lk)


def rayjob(name: str = "job", *, mode: str = "K8sJobMode", token: bool = False, **spec: Any) -> Obj:
    head: Obj = {
        "rayStartParams": {},
        "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.52.0"}]}},
    }
    worker: Obj = {
        "groupName": "wg",
        "replicas": 1,
        "minReplicas": 0,
        "maxReplicas": 2,
        "rayStartParams": {},
        "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.52.0"}]}},
    }
    cluster: Obj = {"rayVersion": "2.52.0", "headGroupSpec": head, "workerGroupSpecs": [worker]}
    if token:
        cluster["authOptions"] = {"mode": "token"}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "entrypoint": "python -c 'print(42)'",
            "submissionMode": mode,
            "rayClusterSpec": cluster,
            **spec,
        },
    }


def running_job(api: Api, name: str = "job") -> Obj:
    """Wait until the RayJob is Running and the Ray job RUNNING (the dashboard answered)."""
    return wait_for(
        lambda: (
            (s := api.status(name)).get("jobDeploymentStatus") == "Running"
            and s.get("jobStatus") == "RUNNING"
            and s
        ),
        what=f"{name} Running with jobStatus RUNNING",
    )


def test_k8s_job_mode_submitter_and_completion(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    api.create(rayjob(token=True, shutdownAfterJobFinishes=True, ttlSecondsAfterFinished=0))
    status = running_job(api)
    job_id, cluster = status["jobId"], status["rayClusterName"]
    assert job_id.startswith("job-") and cluster.startswith("job-")
    assert status["dashboardURL"] == f"{cluster}-head-svc.{NS}.svc.cluster.local:8265"
    owner = api.cluster(cluster)["metadata"]["ownerReferences"][0]  # type: ignore[index]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("RayJob", "job", True)

    submitter = api.batch.read_namespaced_job("job", NS)
    assert submitter.metadata.owner_references[0].kind == "RayJob"
    container = submitter.spec.template.spec.containers[0]
    assert container.image == "rayside/submitter"
    assert container.command == ["python3.11", "-m", "submitter"]
    assert container.args == ["--", "python -c 'print(42)'"]
    env = {e.name: e for e in container.env}
    assert env["RAY_JOB_SUBMISSION_ID"].value == job_id
    assert env["RAY_DASHBOARD_ADDRESS"].value == status["dashboardURL"]
    token_ref = env["RAY_AUTH_TOKEN"].value_from.secret_key_ref
    assert env["RAY_AUTH_TOKEN"].value is None and token_ref.key == "auth_token"
    secret = api.core.read_namespaced_secret(token_ref.name, NS)
    token = base64.b64decode(secret.data["auth_token"]).decode()
    assert f"Bearer {token}" in stub.tokens  # the operator's GETs carry the cluster's token
    assert token not in json.dumps(api.get()) and all(
        token not in (e.message or "") for e in api.core.list_namespaced_event(NS).items
    )

    stub.set(job_id, "SUCCEEDED", "Job finished successfully.")
    done = wait_for(
        lambda: (s := api.status()).get("jobDeploymentStatus") == "Complete" and s, what="Complete"
    )
    assert done["jobStatus"] == "SUCCEEDED" and done["succeeded"] == 1 and done["endTime"]
    assert api.batch.read_namespaced_job("job", NS).status.succeeded == 1
    table = kubectl(api, "get", "rayjob", "job")  # the CRD's printer columns, as KubeRay's
    header, row = table.splitlines()[:2]
    columns = "NAME JOB STATUS DEPLOYMENT STATUS RAY CLUSTER NAME START TIME END TIME AGE"
    assert header.split() == columns.split()
    assert row.split()[:4] == ["job", "SUCCEEDED", "Complete", cluster]
    wait_for(lambda: api.cluster(cluster) is None, what="cluster deleted after the job (TTL 0)")
    assert api.exists()  # shutdownAfterJobFinishes deletes the cluster, not the RayJob
    assert {"CreatedRayCluster", "CreatedJob", "Completed", "DeletedRayCluster"} <= api.reasons()


def test_failed_ray_job_fails_with_its_message(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    api.create(rayjob(shutdownAfterJobFinishes=True, ttlSecondsAfterFinished=4))
    job_id = running_job(api)["jobId"]
    stub.set(job_id, "FAILED", "Job entrypoint command failed with exit code 3")
    done = wait_for(lambda: (s := api.status()).get("jobDeploymentStatus") == "Failed" and s, what="Failed")
    assert done["jobStatus"] == "FAILED" and done["reason"] == "AppFailed" and done["failed"] == 1
    assert done["message"] == "Job entrypoint command failed with exit code 3"
    assert api.cluster(done["rayClusterName"]) is not None  # kept for ttlSecondsAfterFinished
    wait_for(lambda: api.cluster(done["rayClusterName"]) is None, what="cluster deleted after the TTL")
    assert api.batch.read_namespaced_job("job", NS)  # the submitter Job stays for its logs


def test_submitter_that_fails_before_submitting_fails_the_rayjob(
    api: Api, stub: JobsStub, operator: OperatorThread
) -> None:
    stub.known_by_default = False  # the Ray job never appears
    template = {
        "metadata": {"annotations": {"localkube.rayside.io/exit-code": "1"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "submitter", "image": "rayside/submitter"}],
        },
    }
    api.create(rayjob(submitterPodTemplate=template, submitterConfig={"backoffLimit": 0}))
    done = wait_for(lambda: (s := api.status()).get("jobDeploymentStatus") == "Failed" and s, what="Failed")
    assert done["reason"] == "SubmissionFailed" and done.get("jobStatus") is None
    assert done["message"].startswith("Job submission has failed. Reason: BackoffLimitExceeded"), done


def test_deletion_rules_run_in_ttl_order(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    rules = [
        {"policy": "DeleteWorkers", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 0}},
        {"policy": "DeleteCluster", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 5}},
        {"policy": "DeleteSelf", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 8}},
    ]
    api.create(rayjob(deletionStrategy={"deletionRules": rules}))
    status = running_job(api)
    cluster = status["rayClusterName"]
    stub.set(status["jobId"], "SUCCEEDED")
    wait_for(
        lambda: all(
            g.get("suspend") for g in (api.cluster(cluster) or {"spec": {}})["spec"]["workerGroupSpecs"]
        ),
        what="worker groups suspended (DeleteWorkers)",
    )
    assert api.deployment() == "Complete" and api.cluster(cluster) is not None  # head kept for debugging

    def node_types() -> list[str]:
        pods = api.core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={cluster}").items
        return sorted(
            p.metadata.labels["ray.io/node-type"] for p in pods if not p.metadata.deletion_timestamp
        )

    wait_for(lambda: node_types() == ["head"], what="worker Pods deleted, head kept")
    wait_for(lambda: api.cluster(cluster) is None, what="cluster deleted (DeleteCluster)")
    assert api.exists()
    wait_for(lambda: not api.exists(), what="RayJob deleted (DeleteSelf)")


def test_suspend_and_resume(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    api.create(rayjob(suspend=True, shutdownAfterJobFinishes=True))
    wait_for(lambda: api.deployment() == "Suspended", what="created suspended")
    assert api.clusters() == []
    api.patch({"spec": {"suspend": False}})
    first = running_job(api)["rayClusterName"]
    api.patch({"spec": {"suspend": True}})
    wait_for(lambda: api.deployment() == "Suspended", what="suspended again")
    assert api.cluster(first) is None or api.cluster(first)["metadata"].get("deletionTimestamp")  # type: ignore[index]
    assert not [j for j in api.batch.list_namespaced_job(NS).items if not j.metadata.deletion_timestamp]
    api.patch({"spec": {"suspend": False}})
    status = running_job(api)
    assert status["rayClusterName"] != first  # a fresh cluster per attempt
    assert {"Suspending", "Suspended", "Resumed"} <= api.reasons()


def test_sidecar_head_pod_deleted_mid_run_fails(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    api.create(rayjob(mode="SidecarMode"))
    cluster = running_job(api)["rayClusterName"]
    head = api.core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={cluster},ray.io/node-type=head")
    containers = [c.name for c in head.items[0].spec.containers]
    assert containers == ["ray-head", "ray-job-submitter"]
    api.core.delete_namespaced_pod(head.items[0].metadata.name, NS)
    done = wait_for(lambda: (s := api.status()).get("jobDeploymentStatus") == "Failed" and s, what="Failed")
    assert done["reason"] == "AppFailed" and done["message"] == "Ray head pod not found."
    assert done["jobStatus"] == "FAILED"


def test_k8s_job_mode_ray_job_lost_with_the_head(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    api.create(rayjob())
    status = running_job(api)
    stub.forget(status["jobId"])  # the head restarted without GCS fault tolerance: the job is gone
    done = wait_for(lambda: (s := api.status()).get("jobDeploymentStatus") == "Failed" and s, what="Failed")
    assert done["reason"] == "RayJobLost" and done["jobStatus"] == "FAILED"


def test_http_mode_operator_restart_submits_once(lk: LocalKube, api: Api, stub: JobsStub) -> None:
    stub.known_by_default = False
    first = OperatorThread(lk, stub).start()
    try:
        api.create(rayjob(mode="HTTPMode"))
        job_id = wait_for(lambda: stub.submissions and stub.submissions[0], what="submitted")
        wait_for(lambda: api.status().get("jobStatus") == "PENDING", what="PENDING seen")
    finally:
        first.stop()
    stub.set(job_id, "RUNNING")
    second = OperatorThread(lk, stub).start()
    try:
        wait_for(lambda: api.status().get("jobStatus") == "RUNNING", what="RUNNING after the restart")
        stub.set(job_id, "SUCCEEDED")
        wait_for(lambda: api.deployment() == "Complete", what="Complete")
    finally:
        second.stop()
    assert stub.submissions == [job_id]
    assert api.batch.list_namespaced_job(NS).items == []  # HTTPMode has no submitter Job


def test_backoff_limit_retries_on_a_fresh_cluster(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    api.create(rayjob(backoffLimit=1))
    first = running_job(api)
    stub.set(first["jobId"], "FAILED", "boom")
    second = wait_for(
        lambda: (s := api.status()).get("jobStatus") == "RUNNING" and s.get("jobId") != first["jobId"] and s,
        what="second attempt running",
    )
    assert second["rayClusterName"] != first["rayClusterName"] and second["failed"] == 1
    wait_for(lambda: api.cluster(first["rayClusterName"]) is None, what="first cluster gone")
    stub.set(second["jobId"], "SUCCEEDED")
    done = wait_for(
        lambda: (s := api.status()).get("jobDeploymentStatus") == "Complete" and s, what="Complete"
    )
    assert (done["succeeded"], done["failed"]) == (1, 1)
    assert "Retrying" in api.reasons()


def test_validation_failed_then_recovers(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    body = rayjob(metadata={"owner": "alice"})
    body["spec"]["rayClusterSpec"]["rayVersion"] = "2.5.0"  # accepted by the CRD, not by the operator
    api.create(body)
    status = wait_for(
        lambda: (s := api.status()).get("jobDeploymentStatus") == "ValidationFailed" and s, what="invalid"
    )
    assert status["reason"] == "ValidationFailed"
    assert status["message"] == "the metadata field requires Ray 2.6.0 or newer"
    assert api.clusters() == [] and "InvalidRayJobSpec" in api.reasons()
    api.patch({"spec": {"rayClusterSpec": {"rayVersion": "2.52.0"}}})
    running_job(api)
    assert "ValidationPassed" in api.reasons()


def test_deleting_a_running_rayjob_stops_its_ray_job(
    api: Api, stub: JobsStub, operator: OperatorThread
) -> None:
    api.create(rayjob())
    status = running_job(api)
    assert "ray.io/rayjob-finalizer" in api.get()["metadata"]["finalizers"]
    api.crs.delete_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", "job")
    wait_for(lambda: not api.exists(), what="RayJob gone once its finalizer is removed")
    assert (stub.get(status["jobId"]) or {}).get("status") == "STOPPED"  # stopped before the RayJob went
    wait_for(lambda: api.cluster(status["rayClusterName"]) is None, what="cluster garbage-collected")


def test_interactive_mode_waits_for_the_job_id(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    api.create(rayjob(mode="InteractiveMode"))
    waiting = wait_for(
        lambda: (s := api.status()).get("jobDeploymentStatus") == "Waiting" and s, what="Waiting"
    )
    assert "jobId" not in waiting and waiting["dashboardURL"]
    assert api.batch.list_namespaced_job(NS).items == [] and stub.submissions == []
    api.patch({"spec": {"jobId": "raysubmit_abc"}})
    assert running_job(api)["jobId"] == "raysubmit_abc"
    stub.set("raysubmit_abc", "SUCCEEDED")
    wait_for(lambda: api.deployment() == "Complete", what="Complete")
