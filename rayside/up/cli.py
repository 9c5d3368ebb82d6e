"""`rayside up FILE.yaml [FILE ...] [--keep]`: validate the files, start localkube + the operator, apply
them, show progress, and (RayJob) stream the driver's output and exit with the job's outcome, or
(RayCluster/RayService) print how to reach it and run until Ctrl-C.

Exit codes: 0 every RayJob SUCCEEDED; 1 a RayJob did not succeed or the cluster could not be started;
2 bad files or flags (one line, nothing started); 130/143 after Ctrl-C/SIGTERM (everything cleaned up).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from rayside.kubeclient import KubeClient, KubeError
from rayside.objects import JSON, RAYCLUSTERS, RAYJOBS, RAYSERVICES
from rayside.up.documents import Document, DocumentError, load_files
from rayside.up.follow import LogFollower, Progress, submitter_pod
from rayside.up.session import (
    Session,
    keep_dir,
    network_mode,
    pod_ip,
    pods_summary,
    read_record,
    write_record,
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
FINISHED = ("Complete", "Failed")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise DocumentError(message)


class Stopper:
    """SIGINT/SIGTERM set `event`; `code` is then 130 or 143."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.code = 0

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on)
            signal.signal(signal.SIGTERM, self._on)

    def _on(self, signum: int, _frame: Any) -> None:
        self.code = 128 + signum
        self.event.set()


def _status(client: KubeClient, doc: Document) -> JSON:
    return dict(client.get(doc.resource.path(doc.namespace, doc.name)).get("status") or {})


def _job_line(doc: Document, status: JSON, pods: str) -> str:
    deploy = status.get("jobDeploymentStatus") or "New"
    job = status.get("jobStatus") or "-"
    return f"RayJob {doc.namespace}/{doc.name}: {deploy}, job {job}; {pods}"


def run_job(client: KubeClient, doc: Document, progress: Progress, stop: threading.Event) -> int:
    """Follow one RayJob to its end: progress, the driver's log, the final status; exit code 0/1."""
    sidecar = (doc.body.get("spec") or {}).get("submissionMode") == "SidecarMode"
    follower = LogFollower(client, progress)
    started = time.monotonic()
    running_at: float | None = None
    status: JSON = {}
    while not stop.is_set():
        status = _status(client, doc)
        cluster = str(status.get("rayClusterName") or "")
        progress.update(_job_line(doc, status, pods_summary(client, doc.namespace)))
        if running_at is None and status.get("jobStatus") == "RUNNING":
            running_at = time.monotonic()
            progress.say(f"RayJob {doc.name} RUNNING after {running_at - started:.1f}s")
        if follower.thread is None:
            pod = submitter_pod(client, doc.namespace, doc.name, cluster, sidecar)
            if pod:
                follower.start(doc.namespace, pod, "ray-job-submitter" if sidecar else None)
        if status.get("jobDeploymentStatus") in FINISHED:
            break
        stop.wait(1.0)
    if stop.is_set():
        return EXIT_FAILURE
    follower.finish(10.0)
    job_status = status.get("jobStatus") or "-"
    message = status.get("message") or ""
    progress.say(
        f"RayJob {doc.namespace}/{doc.name} {status.get('jobDeploymentStatus')}: job {job_status}"
        f"{' - ' + message if message else ''} ({time.monotonic() - started:.1f}s)"
    )
    return EXIT_OK if job_status == "SUCCEEDED" else EXIT_FAILURE


def spec_problem(status: JSON) -> str | None:
    """The operator's verdict on an invalid spec (`RayClusterSpecValid` False), if any."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == "RayClusterSpecValid" and cond.get("status") == "False":
            return str(cond.get("message") or cond.get("reason") or "invalid spec")
    return None


def wait_cluster(
    client: KubeClient, doc: Document, kubeconfig: str, progress: Progress, stop: threading.Event
) -> bool:
    """Wait for a RayCluster to be ready, then say how to reach it; False when the operator rejects it."""
    while not stop.is_set():
        status = _status(client, doc)
        if (problem := spec_problem(status)) is not None:
            progress.say(f"RayCluster {doc.namespace}/{doc.name} is invalid: {problem}")
            return False
        progress.update(
            f"RayCluster {doc.namespace}/{doc.name}: {status.get('state') or 'pending'}; "
            + pods_summary(client, doc.namespace, {"ray.io/cluster": doc.name})
        )
        if status.get("state") == "ready":
            break
        stop.wait(1.0)
    if stop.is_set():
        return True
    ip = pod_ip(client, doc.namespace, {"ray.io/cluster": doc.name, "ray.io/node-type": "head"})
    url = f"http://{ip or '127.0.0.1'}:8265"
    k = f"--kubeconfig {kubeconfig}"
    progress.say(f"RayCluster {doc.namespace}/{doc.name} is ready; dashboard {url}")
    progress.say(f"  token:  rayside get token {doc.name} -n {doc.namespace} {k}")
    progress.say(
        f"  submit: RAY_AUTH_TOKEN=$(rayside get token {doc.name} -n {doc.namespace} {k}) "
        f"rayside submit --address {url} -- python -c 'print(1)'"
    )
    return True


def wait_service(client: KubeClient, doc: Document, progress: Progress, stop: threading.Event) -> None:
    """Wait for a RayService's apps to be RUNNING, then print the Serve URL."""
    while not stop.is_set():
        status = _status(client, doc)
        active = status.get("activeServiceStatus") or {}
        apps = active.get("applicationStatuses") or {}
        states = {n: (a or {}).get("status") for n, a in apps.items()}
        progress.update(
            f"RayService {doc.namespace}/{doc.name}: {status.get('serviceStatus') or 'pending'}, "
            f"apps {states or '-'}; " + pods_summary(client, doc.namespace)
        )
        if states and all(s == "RUNNING" for s in states.values()):
            cluster = str(active.get("rayClusterName") or "")
            ip = pod_ip(client, doc.namespace, {"ray.io/cluster": cluster, "ray.io/node-type": "head"})
            progress.say(
                f"RayService {doc.namespace}/{doc.name} is serving at http://{ip or '127.0.0.1'}:8000/"
            )
            return
        stop.wait(2.0)


def run(docs: list[Document], keep: bool, stopper: Stopper) -> int:
    progress = Progress()
    progress.say(network_mode())
    session = Session(keep_dir() if keep else None)
    code = EXIT_OK
    try:
        t0 = time.monotonic()
        client = session.start()
        session.apply(docs)
        if keep:
            names = [f"{d.kind} {d.namespace}/{d.name}" for d in docs]
            write_record(keep_dir(), session.kubeconfig, names)
        progress.say(
            f"localkube and the operator started, {len(docs)} objects applied "
            f"({time.monotonic() - t0:.1f}s); "
            f"kubectl --kubeconfig {session.kubeconfig} get pods"
        )
        jobs = [d for d in docs if d.resource == RAYJOBS]
        for doc in jobs:
            code = max(code, run_job(client, doc, progress, stopper.event))
        for doc in docs:
            if doc.resource == RAYCLUSTERS:
                if not wait_cluster(client, doc, session.kubeconfig, progress, stopper.event):
                    code = EXIT_FAILURE
            elif doc.resource == RAYSERVICES:
                wait_service(client, doc, progress, stopper.event)
        if (keep or not jobs) and code == EXIT_OK and not stopper.event.is_set():
            progress.say("running; Ctrl-C stops everything and cleans up")
            stopper.event.wait()
    except (KubeError, OSError) as exc:
        progress.say(f"failed: {exc}")
        code = EXIT_FAILURE
    finally:
        progress.say("stopping: operator, Ray pods, localkube")
        session.close()
        progress.close()
    return stopper.code or code


def main(argv: Sequence[str] | None = None) -> int:
    """`rayside up FILE.yaml [FILE ...] [--keep]`."""
    parser = _Parser(prog="rayside up", description="Run KubeRay YAML on this machine with real Ray.")
    parser.add_argument("files", nargs="+", metavar="FILE.yaml")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep running after the jobs finish, state in ~/.rayside/up (rayside status / down)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        docs = load_files(args.files)
    except DocumentError as exc:
        print(f"rayside up: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.keep and (record := read_record(keep_dir())) is not None:
        print(
            f"rayside up: a kept session already runs (pid {record['pid']}); stop it with `rayside down`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stopper = Stopper()
    stopper.install()
    return run(docs, args.keep, stopper)
