"""Applies :func:`localkube.controllers.job.plan_job` for every Job: reads the informer caches, keeps
expectations (pods created but not yet seen, pods deleted by us) and performs the plan's writes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from localkube.controllers.gc import GarbageCollector
from localkube.controllers.job import TRACKING_FINALIZER, JobSettings, Observed, plan_job
from localkube.controllers.runtime import Enqueue, record_event
from rayside.kubeclient import Conflict, KubeClient, KubeError, NotFound
from rayside.objects import (
    JOBS,
    JSON,
    PODS,
    key_of,
    name_of,
    namespace_of,
    owner_references_of,
    split_key,
    uid_of,
)

log = logging.getLogger(__name__)
EXPECTATION_TIMEOUT = 30.0


@dataclass
class _JobMemory:
    created: dict[str, float] = field(default_factory=dict)  # generated pod name -> when
    deleted: set[str] = field(default_factory=set)
    counted: set[str] = field(default_factory=set)
    last_failed: int = 0
    last_failure: dt.datetime | None = None


def controller_job(pod: JSON) -> tuple[str, str] | None:
    """(job name, job uid) of a pod controlled by a Job."""
    for ref in owner_references_of(pod):
        if (
            ref.get("controller")
            and ref.get("kind") == "Job"
            and str(ref.get("apiVersion", "")).startswith("batch/")
        ):
            return str(ref.get("name")), str(ref.get("uid"))
    return None


class JobController:
    def __init__(
        self,
        client: KubeClient,
        enqueue: Enqueue,
        get_job: Callable[[str], JSON | None],
        clock: Callable[[], float],
        settings: JobSettings,
    ) -> None:
        self.client = client
        self.enqueue = enqueue
        self.get_job = get_job
        self.clock = clock
        self.settings = settings
        self.lock = threading.Lock()
        self.pods: dict[str, dict[str, JSON]] = {}  # job uid -> pod name -> pod
        self.memory: dict[str, _JobMemory] = {}

    def on_job(self, kind: str, job: JSON) -> None:
        meta = job["metadata"]
        if kind == "DELETED":
            with self.lock:
                self.memory.pop(str(meta.get("uid")), None)
                orphans = list(self.pods.get(str(meta.get("uid")), {}).values())
            for pod in orphans:
                self.enqueue(("jobpod", key_of(pod)), 0.0)
            return
        self.enqueue(("job", key_of(job)), 0.0)

    def on_pod(self, kind: str, pod: JSON) -> None:
        owner = controller_job(pod)
        meta = pod["metadata"]
        if kind != "DELETED" and TRACKING_FINALIZER in (meta.get("finalizers") or []):
            job = self.get_job(f"{meta.get('namespace')}/{owner[0]}") if owner else None
            if owner is None or job is None or uid_of(job) != owner[1]:
                self.enqueue(("jobpod", key_of(pod)), 0.0)
        if owner is None:
            return
        with self.lock:
            pods = self.pods.setdefault(owner[1], {})
            if kind == "DELETED":
                pods.pop(meta["name"], None)
                if not pods:
                    self.pods.pop(owner[1], None)
            else:
                pods[meta["name"]] = pod
            mem = self.memory.get(owner[1])
            if mem is not None:
                mem.created.pop(meta["name"], None)
        self.enqueue(("job", f"{meta.get('namespace')}/{owner[0]}"), 0.0)

    def _observed(self, uid: str, now: float) -> tuple[list[JSON], Observed]:
        with self.lock:
            pods = list(self.pods.get(uid, {}).values())
            mem = self.memory.setdefault(uid, _JobMemory())
            mem.created = {n: t for n, t in mem.created.items() if now - t < EXPECTATION_TIMEOUT}
            live = {uid_of(p) for p in pods}
            mem.deleted &= live
            obs = Observed(len(mem.created), frozenset(mem.deleted), frozenset(mem.counted), mem.last_failure)
        return pods, obs

    def process(self, key: str) -> None:
        job = self.get_job(key)
        if job is not None:
            self._sync(key, job, retry=True)

    def _sync(self, key: str, job: JSON, retry: bool) -> None:
        uid = uid_of(job)
        now_s = self.clock()
        now = dt.datetime.fromtimestamp(now_s, dt.UTC)
        pods, obs = self._observed(uid, now_s)
        ns, name = namespace_of(job), name_of(job)
        plan = plan_job(job, pods, now, obs, self.settings)
        if plan.status is not None:
            try:
                if not self._write_status(job, plan.status):
                    return
            except Conflict:
                if not retry:
                    self.enqueue(("job", key), 0.1)
                    return
                log.debug("job %s: status conflict; retrying with a fresh read", key)
                try:
                    fresh = self.client.get(JOBS.path(ns, name))
                except NotFound:
                    return
                self._sync(key, fresh, retry=False)
                return
            with self.lock:
                mem = self.memory.setdefault(uid, _JobMemory())
                mem.counted.update(plan.counted)
                failed = int(plan.status.get("failed", 0) or 0) + len(
                    (plan.status.get("uncountedTerminatedPods") or {}).get("failed") or []
                )
                if failed > mem.last_failed:
                    mem.last_failed, mem.last_failure = failed, now
        for pod in plan.remove_finalizer:
            GarbageCollector.remove_finalizer(self.client, PODS, pod, TRACKING_FINALIZER)
        for pod in plan.delete:
            self._delete_pod(uid, pod)
        for body in plan.create:
            self._create_pod(uid, ns, body, job)
        if plan.status is not None:
            self._finish_events(job, plan.status)
        if plan.delete_job:
            self._quiet(
                lambda: self.client.delete(JOBS.path(ns, name), body={"propagationPolicy": "Background"})
            )
        if plan.requeue_after is not None:
            self.enqueue(("job", key), max(plan.requeue_after, 0.05))

    def process_pod(self, key: str) -> None:
        """Drop the tracking finalizer from a pod whose Job is gone (or that lost its Job controller ref)."""
        ns, name = split_key(key)
        try:
            pod = self.client.get(PODS.path(ns, name))
        except NotFound:
            return
        if TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
            return
        owner = controller_job(pod)
        if owner is not None:
            try:
                job = self.client.get(JOBS.path(ns, owner[0]))
                if uid_of(job) == owner[1]:
                    return
            except NotFound:
                pass
        log.debug("job controller: removing tracking finalizer from orphan pod %s", key)
        if not GarbageCollector.remove_finalizer(self.client, PODS, pod, TRACKING_FINALIZER):
            self.enqueue(("jobpod", key), 0.2)

    def _write_status(self, job: JSON, status: JSON) -> bool:
        meta = job["metadata"]
        body = {**job, "status": status}
        try:
            self.client.replace(JOBS.path(meta["namespace"], meta["name"], "status"), body)
        except NotFound:
            return False
        return True

    def _finish_events(self, job: JSON, status: JSON) -> None:
        before = {
            c.get("type")
            for c in (job.get("status") or {}).get("conditions") or []
            if c.get("status") == "True"
        }
        for cond in status.get("conditions") or []:
            if cond.get("status") != "True" or cond.get("type") in before:
                continue
            if cond.get("type") == "Complete":
                record_event(self.client, job, "Normal", "Completed", "Job completed", "job-controller")
            elif cond.get("type") == "Failed":
                record_event(self.client, job, "Warning", str(cond.get("reason")), str(cond.get("message")),
                             "job-controller")  # fmt: skip

    def _create_pod(self, uid: str, ns: str, body: JSON, job: JSON) -> None:
        try:
            pod = self.client.create(PODS.path(ns), body)
        except KubeError as exc:
            log.debug("job pod create in %s failed: %s", ns, exc)
            record_event(
                self.client, job, "Warning", "FailedCreate", f"Error creating: {exc}", "job-controller"
            )
            return
        created = f"Created pod: {pod['metadata']['name']}"
        record_event(self.client, job, "Normal", "SuccessfulCreate", created, "job-controller")
        with self.lock:
            mem = self.memory.setdefault(uid, _JobMemory())
            known = name_of(pod) in self.pods.get(uid, {})
            if not known:
                mem.created[name_of(pod)] = self.clock()

    def _delete_pod(self, uid: str, pod: JSON) -> None:
        meta = pod["metadata"]
        with self.lock:
            self.memory.setdefault(uid, _JobMemory()).deleted.add(str(meta.get("uid")))
        body = {"propagationPolicy": "Background", "preconditions": {"uid": meta.get("uid")}}
        self._quiet(lambda: self.client.delete(PODS.path(meta["namespace"], meta["name"]), body=body))

    @staticmethod
    def _quiet(action: Callable[[], object]) -> None:
        try:
            action()
        except (NotFound, Conflict):
            pass
        except KubeError as exc:
            log.debug("job controller: %s", exc)
