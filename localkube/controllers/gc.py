"""Garbage collector: deletes dependents whose owners are gone (background), drives foreground deletion
(delete dependents, then drop the owner's ``foregroundDeletion`` finalizer) and orphaning (strip the
ownerReference from dependents, then drop ``orphan``), across every served resource including CRs.

Decisions are pure (:func:`plan_dependent`, :func:`plan_owner`); :class:`GarbageCollector` applies them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localkube.controllers.runtime import Enqueue
from rayside.kubeclient import Conflict, Invalid, KubeClient, KubeError, NotFound
from rayside.objects import (
    JSON,
    Resource,
    is_deleting,
    key_of,
    meta_of,
    namespace_of,
    owner_references_of,
    uid_of,
)

log = logging.getLogger(__name__)

PRESENT, ABSENT, FOREGROUND = "present", "absent", "foreground"
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"


@dataclass
class DependentPlan:
    """What to do with one dependent: delete it (with a propagation policy) or drop dangling refs."""

    delete_policy: str | None = None
    remove_owner_uids: list[str] = field(default_factory=list)


@dataclass
class OwnerPlan:
    """What to do for one owner being deleted with the orphan or foreground policy."""

    strip_from: list[JSON] = field(default_factory=list)  # dependents whose ref to the owner is removed
    delete_dependents: list[JSON] = field(default_factory=list)
    remove_finalizer: str | None = None


def owner_state(owner: JSON | None) -> str:
    """``absent`` / ``foreground`` (being deleted, waiting for dependents) / ``present``."""
    if owner is None:
        return ABSENT
    meta = owner.get("metadata") or {}
    if meta.get("deletionTimestamp") and FOREGROUND_FINALIZER in (meta.get("finalizers") or []):
        return FOREGROUND
    return PRESENT


def plan_dependent(dep: JSON, states: dict[str, str]) -> DependentPlan:
    """Decide for ``dep`` given each owner uid's state (absent / foreground / present)."""
    refs = owner_references_of(dep)
    if not refs or is_deleting(dep):
        return DependentPlan()
    absent = [r["uid"] for r in refs if states.get(r.get("uid", "")) == ABSENT]
    waiting = [r for r in refs if states.get(r.get("uid", "")) == FOREGROUND]
    solid = [r for r in refs if states.get(r.get("uid", "")) == PRESENT]
    if solid:
        return DependentPlan(remove_owner_uids=absent)
    if waiting:
        blocking = any(r.get("blockOwnerDeletion") for r in waiting)
        return DependentPlan(delete_policy="Foreground" if blocking else "Background")
    return DependentPlan(delete_policy="Background")


def plan_owner(owner: JSON, dependents: list[JSON]) -> OwnerPlan:
    """Decide for an owner carrying the ``orphan`` or ``foregroundDeletion`` finalizer."""
    meta = owner.get("metadata") or {}
    finalizers = meta.get("finalizers") or []
    uid = meta.get("uid")
    if not meta.get("deletionTimestamp"):
        return OwnerPlan()
    if ORPHAN_FINALIZER in finalizers:
        return OwnerPlan(strip_from=list(dependents), remove_finalizer=ORPHAN_FINALIZER)
    if FOREGROUND_FINALIZER not in finalizers:
        return OwnerPlan()
    pending = [d for d in dependents if not is_deleting(d)]
    blocking = [
        d
        for d in dependents
        if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in owner_references_of(d))
    ]
    return OwnerPlan(delete_dependents=pending, remove_finalizer=None if blocking else FOREGROUND_FINALIZER)


def _index_of(values: list[Any], match: Callable[[Any], bool]) -> int | None:
    return next((i for i, v in enumerate(values) if match(v)), None)


class GarbageCollector:
    """Keeps uid and owner indexes from the informers' events and works a queue of uids to check."""

    def __init__(
        self,
        client: KubeClient,
        enqueue: Enqueue,
        resource_for: Callable[[str, str], Resource | None],
        resources: Callable[[], list[Resource]] = list,
    ) -> None:
        self.client = client
        self.enqueue = enqueue
        self.resource_for = resource_for  # (apiVersion, kind) -> Resource
        self.resources = resources  # every watched resource
        self.lock = threading.Lock()
        self.by_uid: dict[str, tuple[Resource, JSON]] = {}
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids

    # -- indexes, fed by informer events ------------------------------------------------------------------
    def on_event(self, res: Resource, kind: str, obj: JSON, old: JSON | None) -> None:
        uid = uid_of(obj)
        if not uid:
            return
        refs = [str(r.get("uid")) for r in owner_references_of(obj)]
        old_refs = [str(r.get("uid")) for r in owner_references_of(old or {})]
        with self.lock:
            for ref in old_refs:
                self.dependents.get(ref, set()).discard(uid)
            if kind == "DELETED":
                self.by_uid.pop(uid, None)
            else:
                self.by_uid[uid] = (res, obj)
                for ref in refs:
                    self.dependents.setdefault(ref, set()).add(uid)
            waiting = set(self.dependents.get(uid, set())) if kind == "DELETED" else set()
        if kind == "DELETED":
            for dep in waiting:
                self.enqueue(("gc", dep), 0.0)
            for ref in refs:  # a blocking dependent went away: its foreground owner may finish now
                self.enqueue(("gc", ref), 0.0)
            return
        if refs and (kind == "ADDED" or refs != old_refs):
            self.enqueue(("gc", uid), 0.0)
        if is_deleting(obj) and {ORPHAN_FINALIZER, FOREGROUND_FINALIZER} & set(
            meta_of(obj).get("finalizers") or []
        ):
            self.enqueue(("gc", uid), 0.0)

    def forget_resource(self, res: Resource) -> None:
        """A resource stopped being served (CRD deleted): its objects are gone for the collector."""
        with self.lock:
            gone = [(uid, obj) for uid, (r, obj) in self.by_uid.items() if r == res]
        for _uid, obj in gone:
            self.on_event(res, "DELETED", obj, obj)

    # -- processing --------------------------------------------------------------------------------------
    def process(self, uid: str) -> None:
        with self.lock:
            entry = self.by_uid.get(uid)
            dep_uids = set(self.dependents.get(uid, set()))
            deps = [self.by_uid[d] for d in dep_uids if d in self.by_uid]
        if entry is None:
            return
        res, obj = entry
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp") and {ORPHAN_FINALIZER, FOREGROUND_FINALIZER} & set(
            meta.get("finalizers") or []
        ):
            self._act_owner(res, obj, deps)
        if meta.get("ownerReferences"):
            self._act_dependent(res, obj)

    def _state(self, dep: JSON, ref: dict[str, Any]) -> str:
        uid = str(ref.get("uid", ""))
        with self.lock:
            cached = self.by_uid.get(uid)
        if cached is not None:
            return owner_state(cached[1])
        res = self.resource_for(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if res is None:
            return ABSENT
        ns = namespace_of(dep) if res.namespaced else None
        try:
            live = self.client.get(res.path(ns, str(ref.get("name", ""))))
        except NotFound:
            return ABSENT
        if uid_of(live) != uid:
            return ABSENT
        return owner_state(live)

    def _act_dependent(self, res: Resource, dep: JSON) -> None:
        refs = dep["metadata"].get("ownerReferences") or []
        states = {str(r.get("uid")): self._state(dep, r) for r in refs}
        plan = plan_dependent(dep, states)
        meta = dep["metadata"]
        if plan.delete_policy:
            log.debug("gc: deleting %s %s (%s)", res.plural, key_of(dep), plan.delete_policy)
            # The resourceVersion precondition makes a decision taken on a stale cached copy fail with 409
            # (e.g. the ownerReference was just stripped by an orphaning owner) instead of deleting.
            pre = {"uid": meta["uid"], "resourceVersion": meta.get("resourceVersion")}
            body = {"propagationPolicy": plan.delete_policy, "preconditions": pre}
            path = res.path(meta.get("namespace"), meta["name"])
            if not self._quiet(lambda: self.client.delete(path, body=body)):
                self.enqueue(("gc", meta["uid"]), 0.5)
        elif plan.remove_owner_uids:
            self._remove_refs(res, dep, set(plan.remove_owner_uids))

    def _act_owner(self, res: Resource, owner: JSON, deps: list[tuple[Resource, JSON]]) -> None:
        if ORPHAN_FINALIZER in (owner["metadata"].get("finalizers") or []):
            # Each resource has its own watch, so a dependent created just before its owner was deleted may
            # not be in the caches yet; releasing `orphan` without it would let it be collected as dangling.
            deps = self._live_dependents(owner, deps)
        plan = plan_owner(owner, [d for _r, d in deps])
        if plan.remove_finalizer == FOREGROUND_FINALIZER:
            # the same for foreground: no blocking dependent in the caches may mean one not delivered yet
            deps = self._live_dependents(owner, deps)
            plan = plan_owner(owner, [d for _r, d in deps])
        owner_uid = uid_of(owner)
        by_uid = {uid_of(d): r for r, d in deps}
        stripped = all([self._remove_refs(by_uid[uid_of(dep)], dep, {owner_uid}) for dep in plan.strip_from])
        for dep in plan.delete_dependents:
            self.enqueue(("gc", uid_of(dep)), 0.0)
        if not stripped:  # the owner keeps `orphan` until every dependent is really released
            self.enqueue(("gc", owner_uid), 0.5)
            return
        if plan.remove_finalizer:
            log.debug(
                "gc: removing finalizer %s from %s %s", plan.remove_finalizer, res.plural, key_of(owner)
            )
            self.remove_finalizer(self.client, res, owner, plan.remove_finalizer)

    def _live_dependents(
        self, owner: JSON, cached: list[tuple[Resource, JSON]]
    ) -> list[tuple[Resource, JSON]]:
        """The cached dependents plus any the server lists that the caches have not delivered yet."""
        uid = uid_of(owner)
        ns = namespace_of(owner)
        found = {uid_of(d): (r, d) for r, d in cached}
        for res in self.resources():
            if ns and not res.namespaced:
                continue  # a namespaced owner cannot own cluster-scoped objects
            try:
                items, _rv = self.client.list_all(res.path(ns))
            except KubeError as exc:
                log.debug("gc: listing %s for dependents failed: %s", res.plural, exc)
                continue
            for item in items:
                refs = owner_references_of(item)
                if any(r.get("uid") == uid for r in refs):
                    found.setdefault(uid_of(item), (res, item))
        return list(found.values())

    def _remove_refs(self, res: Resource, dep: JSON, uids: set[str]) -> bool:
        """Strip the given owners' references from a dependent; False (and requeued) when that failed."""
        meta = dep["metadata"]
        refs = meta.get("ownerReferences") or []
        ops: list[dict[str, Any]] = []
        for i in reversed(range(len(refs))):
            if refs[i].get("uid") in uids:
                ops += [
                    {"op": "test", "path": f"/metadata/ownerReferences/{i}/uid", "value": refs[i]["uid"]},
                    {"op": "remove", "path": f"/metadata/ownerReferences/{i}"},
                ]
        if ops:
            path = res.path(meta.get("namespace"), meta["name"])
            if not self._quiet(lambda: self.client.patch(path, ops, patch_type="json")):
                self.enqueue(("gc", meta["uid"]), 0.5)
                return False
        return True

    @staticmethod
    def remove_finalizer(client: KubeClient, res: Resource, obj: JSON, finalizer: str) -> bool:
        """Remove one finalizer with a test-guarded JSON patch; False when the object changed under us."""
        meta = obj["metadata"]
        fins = meta.get("finalizers") or []
        idx = _index_of(fins, lambda f: f == finalizer)
        if idx is None:
            return True
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{idx}", "value": finalizer},
            {"op": "remove", "path": f"/metadata/finalizers/{idx}"},
        ]
        try:
            client.patch(res.path(meta.get("namespace"), meta["name"]), ops, patch_type="json")
        except NotFound:
            return True
        except (Invalid, Conflict):
            return False
        return True

    @staticmethod
    def _quiet(action: Callable[[], Any]) -> bool:
        try:
            action()
        except NotFound:
            return True
        except (Conflict, Invalid) as exc:
            log.debug("gc: %s", exc)
            return False
        except KubeError as exc:
            log.debug("gc: request failed: %s", exc)
            return False
        return True
