"""Job controller (batch/v1) as in kube-controller-manager: pods from the template with job labels, tracking
finalizer and controller ownerReference; parallelism/completions (NonIndexed, Indexed, work queue);
succeeded/failed counting through ``uncountedTerminatedPods`` and the tracking finalizer; backoffLimit
(OnFailure container restarts count), activeDeadlineSeconds, suspend/resume, ttlSecondsAfterFinished and an
exponential pod re-creation back-off (fast by default; see :class:`JobSettings`).

:func:`plan_job` decides (pure); :class:`JobController` reads caches, calls it and applies the plan.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from rayside.objects import JSON, annotations_of, is_deleting, labels_of, name_of, uid_of

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETE_MESSAGE = "Reached expected number of succeeded pods"


@dataclass(frozen=True)
class JobSettings:
    """Pod re-creation back-off after failures: ``base * 2**(failed-1)``, capped (k8s: 10 s, 6 min)."""

    backoff_base: float = 1.0
    backoff_max: float = 60.0


@dataclass
class JobPlan:
    create: list[JSON] = field(default_factory=list)
    delete: list[JSON] = field(default_factory=list)
    remove_finalizer: list[JSON] = field(default_factory=list)
    status: JSON | None = None
    requeue_after: float | None = None
    delete_job: bool = False
    counted: list[str] = field(default_factory=list)  # pod uids moved into the counters by this status


@dataclass(frozen=True)
class Observed:
    """What the actor knows beyond the caches: unseen creations, our own deletions, the last failure."""

    pending_creates: int = 0
    deleted_by_us: frozenset[str] = frozenset()
    counted: frozenset[str] = frozenset()
    last_failure: dt.datetime | None = None


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _meta(obj: JSON) -> JSON:
    return obj.get("metadata") or {}


def _phase(pod: JSON) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _has_fin(pod: JSON) -> bool:
    return TRACKING_FINALIZER in (_meta(pod).get("finalizers") or [])


def _cond(status: JSON, ctype: str) -> JSON | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def _is_true(status: JSON, ctype: str) -> bool:
    c = _cond(status, ctype)
    return c is not None and c.get("status") == "True"


def _set_cond(status: JSON, ctype: str, value: str, reason: str, message: str, now: dt.datetime) -> None:
    conds = status.setdefault("conditions", [])
    cur = _cond(status, ctype)
    stamp = rfc3339(now)
    if cur is None:
        conds.append({"type": ctype, "status": value, "reason": reason, "message": message,
                      "lastProbeTime": stamp, "lastTransitionTime": stamp})  # fmt: skip
    elif cur.get("status") != value or cur.get("reason") != reason:
        cur.update(
            status=value, reason=reason, message=message, lastProbeTime=stamp, lastTransitionTime=stamp
        )


def job_labels(job: JSON) -> dict[str, str]:
    uid, name = uid_of(job), name_of(job)
    return {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "job-name": name}  # fmt: skip


def pod_for(job: JSON, index: int | None = None) -> JSON:
    """The Pod a Job creates (``index`` for Indexed completion mode)."""
    meta, spec = _meta(job), job.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    pmeta: JSON = template.get("metadata") or {}
    pmeta["labels"] = {**(pmeta.get("labels") or {}), **job_labels(job)}
    pmeta["generateName"] = f"{meta['name']}-" if index is None else f"{meta['name']}-{index}-"
    pmeta["namespace"] = meta.get("namespace")
    pmeta["finalizers"] = [TRACKING_FINALIZER]
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"]}
    pmeta["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
    pmeta.pop("name", None)
    pspec: JSON = template.get("spec") or {}
    if index is not None:
        pmeta["annotations"] = {**(pmeta.get("annotations") or {}), INDEX_KEY: str(index)}
        pmeta["labels"][INDEX_KEY] = str(index)
        pspec.setdefault("hostname", f"{meta['name']}-{index}")
        for c in pspec.get("containers") or []:
            c["env"] = [*(c.get("env") or []), {"name": "JOB_COMPLETION_INDEX", "value": str(index)}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pmeta, "spec": pspec}


def format_indexes(indexes: set[int]) -> str:
    """``{0,1,2,4}`` -> ``"0-2,4"`` (the ``completedIndexes`` format)."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def parse_indexes(text: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, (text or "").split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def _pod_index(pod: JSON) -> int | None:
    raw = annotations_of(pod).get(INDEX_KEY) or labels_of(pod).get(INDEX_KEY)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass
class _View:
    """The job's pods classified, plus the counters including not-yet-counted terminations."""

    active: list[JSON]
    terminating: list[JSON]
    succeeded: int
    failed: int
    restarts: int
    completed: set[int]


def _count(job: JSON, pods: list[JSON], status: JSON, plan: JobPlan, obs: Observed, finished: bool) -> _View:
    stored = (job.get("status") or {}).get("uncountedTerminatedPods") or {}
    unc = status.setdefault("uncountedTerminatedPods", {})
    unc_s, unc_f = list(unc.get("succeeded") or []), list(unc.get("failed") or [])
    by_uid = {uid_of(p): p for p in pods}
    for pod in pods:
        uid = uid_of(pod)
        if not _has_fin(pod) or uid in unc_s or uid in unc_f or uid in obs.counted:
            continue
        phase, deleting = _phase(pod), is_deleting(pod)
        if phase == "Succeeded":
            unc_s.append(uid)
        elif phase == "Failed" or (deleting and not finished and uid not in obs.deleted_by_us):
            unc_f.append(uid)
        elif deleting:
            plan.remove_finalizer.append(pod)
    persisted = set(stored.get("succeeded") or []) | set(stored.get("failed") or [])
    plan.remove_finalizer += [p for u, p in by_uid.items() if u in persisted and _has_fin(p)]
    moved_s = [u for u in unc_s if u in persisted and (u not in by_uid or not _has_fin(by_uid[u]))]
    moved_f = [u for u in unc_f if u in persisted and (u not in by_uid or not _has_fin(by_uid[u]))]
    status["succeeded"] = int(status.get("succeeded", 0) or 0) + len(moved_s)
    status["failed"] = int(status.get("failed", 0) or 0) + len(moved_f)
    plan.counted = moved_s + moved_f
    unc["succeeded"] = [u for u in unc_s if u not in moved_s]
    unc["failed"] = [u for u in unc_f if u not in moved_f]
    status["uncountedTerminatedPods"] = {k: v for k, v in unc.items() if v}
    live = [p for p in pods if _phase(p) not in ("Succeeded", "Failed")]
    active = [p for p in live if not is_deleting(p) and uid_of(p) not in obs.deleted_by_us]
    restarts = sum(int(cs.get("restartCount", 0) or 0) for p in active
                   for cs in (p.get("status") or {}).get("containerStatuses") or [])  # fmt: skip
    completed = parse_indexes(str(status.get("completedIndexes", "")))
    completed |= {i for p in pods if _phase(p) == "Succeeded" and (i := _pod_index(p)) is not None}
    return _View(active, [p for p in live if p not in active], status["succeeded"] + len(unc["succeeded"]),
                 status["failed"] + len(unc["failed"]), restarts, completed)  # fmt: skip


def _failure(job: JSON, status: JSON, view: _View, now: dt.datetime) -> tuple[str, str] | None:
    spec = job.get("spec") or {}
    limit = int(spec.get("backoffLimit", 6) if spec.get("backoffLimit") is not None else 6)
    start = _parse(status.get("startTime"))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and start is not None and (now - start).total_seconds() >= float(deadline):
        return "DeadlineExceeded", DEADLINE_MESSAGE
    policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    on_failure = policy == "OnFailure" and view.restarts > 0 and (view.restarts >= limit if limit else True)
    if view.failed > limit or on_failure:
        return "BackoffLimitExceeded", BACKOFF_MESSAGE
    return None


def _succeeded(job: JSON, view: _View) -> bool:
    spec = job.get("spec") or {}
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and completions is not None:
        return len(view.completed) >= int(completions)
    if completions is None:
        return view.succeeded > 0
    return view.succeeded >= int(completions)


def _finish_ttl(job: JSON, status: JSON, plan: JobPlan, now: dt.datetime) -> None:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None:
        return
    done = _parse(status.get("completionTime")) or _parse(
        (_cond(status, "Failed") or {}).get("lastTransitionTime")
    )
    if done is None:
        return
    remaining = (done - now).total_seconds() + float(ttl)
    if remaining <= 0:
        plan.delete_job = True
    else:
        plan.requeue_after = remaining


def _create_pods(
    job: JSON, view: _View, plan: JobPlan, obs: Observed, now: dt.datetime, settings: JobSettings
) -> None:
    spec = job.get("spec") or {}
    parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
    completions = spec.get("completions")
    indexed = spec.get("completionMode") == "Indexed" and completions is not None
    if completions is None:
        wanted = 0 if view.succeeded > 0 else parallelism
    else:
        done = len(view.completed) if indexed else view.succeeded
        wanted = max(0, min(parallelism, int(completions) - done))
    have = len(view.active) + obs.pending_creates
    if have > wanted:
        plan.delete += sorted(view.active, key=lambda p: str(_meta(p).get("creationTimestamp", "")))[
            wanted - have :
        ]
        return
    if have == wanted:
        return
    if view.failed > 0 and obs.last_failure is not None:
        delay = min(settings.backoff_base * 2 ** (view.failed - 1), settings.backoff_max)
        wait = (obs.last_failure - now).total_seconds() + delay
        if wait > 0:
            plan.requeue_after = wait
            return
    if indexed:
        busy = view.completed | {i for p in view.active if (i := _pod_index(p)) is not None}
        free = [i for i in range(int(completions or 0)) if i not in busy][: wanted - have]
        plan.create = [pod_for(job, i) for i in free]
    else:
        plan.create = [pod_for(job) for _ in range(wanted - have)]


def plan_job(job: JSON, pods: list[JSON], now: dt.datetime, obs: Observed, settings: JobSettings) -> JobPlan:
    """Everything the controller should do for ``job`` owning ``pods`` at ``now``."""
    plan = JobPlan()
    spec, old_status = job.get("spec") or {}, job.get("status") or {}
    status: JSON = copy.deepcopy(old_status)
    finished = _is_true(status, "Complete") or _is_true(status, "Failed")
    view = _count(job, pods, status, plan, obs, finished)
    if finished:
        plan.delete += view.active
        plan.remove_finalizer += [
            p for p in view.terminating if _has_fin(p) and p not in plan.remove_finalizer
        ]
        _finish_ttl(job, status, plan, now)
    elif spec.get("suspend"):
        plan.delete += view.active
        _set_cond(status, "Suspended", "True", "JobSuspended", "Job suspended", now)
    else:
        if _is_true(status, "Suspended"):
            _set_cond(status, "Suspended", "False", "JobResumed", "Job resumed", now)
            status["startTime"] = rfc3339(now)
        status.setdefault("startTime", rfc3339(now))
        _progress(job, status, view, plan, obs, now, settings)
    _summarize(status, view, plan)
    if spec.get("completionMode") == "Indexed":
        status["completedIndexes"] = format_indexes(view.completed)
    plan.status = status if status != old_status else None
    return plan


def _progress(job: JSON, status: JSON, view: _View, plan: JobPlan, obs: Observed, now: dt.datetime,
              settings: JobSettings) -> None:  # fmt: skip
    failure = _failure(job, status, view, now)
    if failure is not None:
        _set_cond(status, "FailureTarget", "True", failure[0], failure[1], now)
        plan.delete += view.active
        plan.remove_finalizer += [
            p for p in view.terminating if _has_fin(p) and p not in plan.remove_finalizer
        ]
        if not view.active and not view.terminating and not status.get("uncountedTerminatedPods"):
            _set_cond(status, "Failed", "True", failure[0], failure[1], now)
        return
    if _succeeded(job, view):
        _set_cond(status, "SuccessCriteriaMet", "True", "CompletionsReached", COMPLETE_MESSAGE, now)
        plan.delete += view.active
        if not view.active and not view.terminating and not status.get("uncountedTerminatedPods"):
            _set_cond(status, "Complete", "True", "CompletionsReached", COMPLETE_MESSAGE, now)
            status["completionTime"] = rfc3339(now)
        return
    _create_pods(job, view, plan, obs, now, settings)
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    start = _parse(status.get("startTime"))
    if deadline is not None and start is not None:
        left = (start - now).total_seconds() + float(deadline)
        plan.requeue_after = min(left, plan.requeue_after) if plan.requeue_after is not None else left


def _summarize(status: JSON, view: _View, plan: JobPlan) -> None:
    deleting = {id(p) for p in plan.delete}
    active = [p for p in view.active if id(p) not in deleting]
    status["active"] = len(active) + len(plan.create)
    status["ready"] = sum(
        1 for p in active if any(c.get("type") == "Ready" and c.get("status") == "True"
                                 for c in (p.get("status") or {}).get("conditions") or [])
    )  # fmt: skip
    status["terminating"] = len(view.terminating) + len(deleting)
    for key in ("active", "succeeded", "failed"):
        if not status.get(key):
            status.pop(key, None)
    status.setdefault("uncountedTerminatedPods", {})
