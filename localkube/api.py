"""Request semantics over the store: create, read, list, update (PUT), status, and CR schema handling.

Patch, scale, binding and delete live in `localkube.writes`; the HTTP layer in `localkube.server` only
decodes requests and calls into `Api`.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from localkube import builtins as kinds
from localkube import meta as m
from localkube import validation, validation_kinds
from localkube.errors import ApiError, bad_request, cause, conflict, invalid, not_found
from localkube.options import ListOptions, WriteOptions
from localkube.registry import Registry, ResourceType, types_from_crd
from localkube.store import Store, clone
from rayside.objects import JSON

log = logging.getLogger(__name__)
SNAPSHOT_TTL = 300.0
INTERNAL = {"resourceVersion", "managedFields"}


@dataclass
class Result:
    obj: JSON
    code: int = 200
    warnings: list[str] = field(default_factory=list)


class Api:
    """All object semantics; thread-safe (every read-decide-write runs under the store lock)."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.rng = rng or random.Random()
        self.clock = clock
        self._snapshots: dict[str, tuple[float, int, list[JSON]]] = {}
        self._snap_lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------------------------
    def now(self) -> str:
        return m.rfc3339(self.clock())

    def stamp(self, rt: ResourceType, obj: JSON) -> JSON:
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        return obj

    def existing(self, rt: ResourceType, ns: str, name: str) -> JSON:
        """The stored object as a shallow copy: never change nested values, clone first."""
        obj = self.store.peek(rt.storage_key, ns, name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return self.stamp(rt, dict(obj))

    def check_body_type(self, rt: ResourceType, body: JSON) -> None:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        av, kind = body.get("apiVersion"), body.get("kind")
        if rt.custom and not kind:
            raise bad_request("Object 'Kind' is missing in the request body")
        if av and av != rt.api_version:
            raise bad_request(
                f"the API version in the data ({av}) does not match the expected API version "
                f"({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        if not isinstance(body.get("metadata", {}), dict):
            raise bad_request("metadata must be an object")

    @staticmethod
    def check_decodes(rt: ResourceType, obj: JSON) -> None:
        """400 when a field of a built-in kind has the wrong JSON type (kube cannot decode such a body)."""
        if not rt.custom:
            msg = validation_kinds.check_decode(rt.storage_key, rt.kind, rt.api_version, obj)
            if msg is not None:
                raise bad_request(msg)

    def _fix_namespace(self, rt: ResourceType, meta: JSON, ns: str) -> None:
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)

    def schema_pass(self, rt: ResourceType, obj: JSON, old: JSON | None, opts: WriteOptions) -> list[str]:
        """Prune, default and validate a custom resource; returns warnings (raises 400/422)."""
        if not rt.custom or rt.schema is None:
            return []
        from localkube import schema as sch

        pruned, unknown = sch.prune(obj, rt.schema)
        warnings: list[str] = []
        if unknown and opts.field_validation == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown))
        if opts.field_validation == "Warn":
            warnings = [f'unknown field "{p}"' for p in unknown]
        defaulted = sch.apply_defaults(pruned, rt.schema)
        defaulted["metadata"] = obj["metadata"]
        errors = sch.validate(defaulted, rt.schema, old)
        if errors:
            raise invalid(
                rt.kind, rt.group, obj["metadata"].get("name", ""), [sch.field_error_cause(e) for e in errors]
            )
        obj.clear()
        obj.update(defaulted)
        return warnings

    # -- reads ---------------------------------------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> JSON:
        return self.existing(rt, ns, name)

    def matcher(self, rt: ResourceType, opts: ListOptions) -> Callable[[JSON], bool]:
        from localkube import selectors as sel

        try:
            labels = sel.parse_label_selector(opts.label_selector) if opts.label_selector else None
            fields = sel.parse_field_selector(opts.field_selector, rt.kind) if opts.field_selector else None
        except sel.SelectorError as exc:
            raise bad_request(str(exc)) from None

        def match(obj: JSON) -> bool:
            if labels is not None and not labels(obj.get("metadata", {}).get("labels") or {}):
                return False
            return fields is None or fields(obj)

        return match

    def list_objects(self, rt: ResourceType, ns: str | None, opts: ListOptions) -> tuple[list[JSON], JSON]:
        """(items, list metadata) honouring selectors and limit/continue from a consistent snapshot."""
        if opts.continue_token:
            return self._continue(opts)
        self._check_list_rv(opts)
        match = self.matcher(rt, opts)
        items, rv = self.store.items(rt.storage_key, ns, deep=False)
        items = [self.stamp(rt, o) for o in items if match(o)]
        meta: JSON = {"resourceVersion": str(rv)}
        if opts.limit and opts.limit > 0 and len(items) > opts.limit:
            token = self._snapshot(rv, items[opts.limit :], opts.limit)
            meta.update({"continue": token, "remainingItemCount": len(items) - opts.limit})
            items = items[: opts.limit]
        return items, meta

    def _check_list_rv(self, opts: ListOptions) -> None:
        """Lists are served from the latest state (documented); a revision from the future is 504 like k8s."""
        if opts.resource_version in ("", "0"):
            return
        want = int(opts.resource_version)
        exact = opts.resource_version_match == "Exact" or (not opts.resource_version_match and opts.limit)
        if exact and want < self.store.compacted_rv:  # e.g. a revision from before a restart
            raise ApiError(410, f"too old resource version: {want} ({self.store.rv})", reason="Expired")
        deadline = time.monotonic() + 3.0
        while want > self.store.rv and time.monotonic() < deadline:
            self.store.wait(self.store.rv, 0.1)
        if want > self.store.rv:
            raise ApiError(
                504,
                f"Too large resource version: {want}, current: {self.store.rv}",
                reason="Timeout",
                details={
                    "causes": [
                        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                    ],
                    "retryAfterSeconds": 1,
                },
                headers={"Retry-After": "1"},
            )

    def _snapshot(self, rv: int, rest: list[JSON], limit: int) -> str:
        sid = f"{rv}-{self.rng.getrandbits(48):x}"
        with self._snap_lock:
            now = time.monotonic()
            for key in [k for k, v in self._snapshots.items() if now - v[0] > SNAPSHOT_TTL]:
                del self._snapshots[key]
            while len(self._snapshots) > 256:
                self._snapshots.pop(next(iter(self._snapshots)))
            self._snapshots[sid] = (now, rv, rest)
        raw = json.dumps({"id": sid, "limit": limit}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _continue(self, opts: ListOptions) -> tuple[list[JSON], JSON]:
        try:
            token = opts.continue_token
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            sid = str(data["id"])
        except (ValueError, KeyError, TypeError):
            raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
        with self._snap_lock:
            snap = self._snapshots.pop(sid, None)
        if snap is None:
            raise ApiError(
                410,
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter.",
                reason="Expired",
            )
        _ts, rv, rest = snap
        limit = opts.limit or len(rest)
        meta: JSON = {"resourceVersion": str(rv)}
        if len(rest) > limit:
            meta.update(
                {"continue": self._snapshot(rv, rest[limit:], limit), "remainingItemCount": len(rest) - limit}
            )
        return rest[:limit], meta

    # -- create --------------------------------------------------------------------------------------------
    def create(self, rt: ResourceType, ns: str, body: JSON, opts: WriteOptions) -> Result:
        self.check_body_type(rt, body)
        self.check_decodes(rt, body)
        obj = self.stamp(rt, clone(body))
        meta = obj.setdefault("metadata", {})
        self._fix_namespace(rt, meta, ns)
        if meta.get("resourceVersion"):
            raise ApiError(
                500, "resourceVersion should not be set on objects to be created", reason="InternalError"
            )
        for key in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            meta.pop(key, None)
        if rt.generation:
            meta["generation"] = 1
        with self.store.lock:
            if rt.namespaced:
                ns_obj = self.store.peek("core/namespaces", "", ns)
                if ns_obj is None:
                    raise not_found("namespaces", "", ns)
                kinds.forbid_namespace_terminating(ns_obj, ns)
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(20):
                    meta["name"] = m.generated_name(str(meta["generateName"]), self.rng)
                    if self.store.peek(rt.storage_key, meta.get("namespace", ""), meta["name"]) is None:
                        break
            causes = validation.name_causes(rt.storage_key, meta) + validation.label_causes(meta)
            causes += kinds.owner_causes(meta)
            kinds.check(rt, obj, causes)
            meta["uid"] = m.new_uid()
            meta["creationTimestamp"] = self.now()
            warnings = self._create_rules(rt, obj, opts)
            if not opts.applied:
                obj = self._track(rt, None, obj, opts, None)
                meta = obj["metadata"]
            current = self.store.peek(rt.storage_key, meta.get("namespace", ""), meta["name"])
            if current is not None:
                from localkube.errors import already_exists

                raise already_exists(
                    rt.plural, rt.group, meta["name"], "deletionTimestamp" in current["metadata"]
                )
            if opts.dry_run:
                return Result(obj, 201, warnings)
            stored = self.stamp(rt, self.store.put(rt.storage_key, obj, None))
            if rt.plural == "customresourcedefinitions":
                self.registry.set_crd(meta["name"], types_from_crd(stored))
            if rt.storage_key == "core/namespaces":
                self._default_service_account(meta["name"])
            log.debug("created %s %s/%s", rt.plural, meta.get("namespace", ""), meta["name"])
            return Result(stored, 201, warnings)

    def _default_service_account(self, ns: str) -> None:
        """What the service-account controller does: every namespace gets a `default` ServiceAccount."""
        if self.store.peek("core/serviceaccounts", ns, "default") is None:
            sa = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": "default",
                    "namespace": ns,
                    "uid": m.new_uid(),
                    "creationTimestamp": self.now(),
                },
            }
            self.store.put("core/serviceaccounts", sa, None)

    def _create_rules(self, rt: ResourceType, obj: JSON, opts: WriteOptions) -> list[str]:
        if rt.custom:
            if rt.status:
                obj.pop("status", None)
            return self.schema_pass(rt, obj, None, opts)
        key = rt.storage_key
        if rt.status and key not in (
            "core/nodes",
            "core/pods",
            "core/namespaces",
            "apiextensions.k8s.io/customresourcedefinitions",
        ):
            obj.pop("status", None)
        if key == "core/pods":
            kinds.pod_defaults(obj)
            kinds.check(rt, obj, validation_kinds.causes(key, obj))
            obj["status"] = {"phase": "Pending", "qosClass": kinds._qos(obj["spec"])}
        elif key == "core/services":
            services, _ = self.store.items("core/services")
            kinds.check(rt, obj, kinds.service_create(obj, services))
        elif key == "batch/jobs":
            kinds.check(rt, obj, kinds.job_create(obj))
        elif key == "core/namespaces":
            kinds.namespace_defaults(obj)
        elif key == "core/events":
            kinds.check(rt, obj, kinds.event_causes(obj))
        elif key == "core/secrets":
            kinds.check(rt, obj, kinds.secret_defaults(obj))
        elif key == "apiextensions.k8s.io/customresourcedefinitions":
            from localkube import schema as sch

            kinds.check(rt, obj, kinds.crd_causes(obj, sch.structural_errors))
            kinds.crd_status(obj, self.now())
        if key != "core/pods":
            kinds.check(rt, obj, validation_kinds.causes(key, obj))
        return []

    # -- update (PUT) --------------------------------------------------------------------------------------
    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: JSON,
        opts: WriteOptions,
        subresource: str | None = None,
        precondition_checked: bool = False,
    ) -> Result:
        self.check_body_type(rt, body)
        new = self.stamp(rt, clone(body))
        meta = new.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        self._fix_namespace(rt, meta, ns)
        with self.store.lock:
            old = self.existing(rt, ns, name)
            body_rv = str(meta.get("resourceVersion") or "")
            if not precondition_checked:
                if not body_rv and not rt.unconditional_update:
                    raise invalid(
                        rt.kind,
                        rt.group,
                        name,
                        [
                            cause(
                                "FieldValueInvalid",
                                "metadata.resourceVersion",
                                "Invalid value: 0x0: must be specified for an update",
                            )
                        ],
                    )
                if body_rv and body_rv != old["metadata"]["resourceVersion"]:
                    raise conflict(rt.plural, rt.group, name)
            return self._write_update(rt, old, new, opts, subresource)

    def _merge_sub(self, rt: ResourceType, old: JSON, new: JSON, subresource: str | None) -> JSON:
        if subresource == "status":
            merged = clone(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            return merged
        if rt.status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        return new

    def _write_update(
        self, rt: ResourceType, old: JSON, new: JSON, opts: WriteOptions, subresource: str | None
    ) -> Result:
        self.check_decodes(rt, new)
        new = self._merge_sub(rt, old, new, subresource)
        meta, old_meta = new["metadata"], old["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        kinds.check(rt, new, validation.label_causes(meta) + kinds.owner_causes(meta))
        if "deletionTimestamp" in old_meta:
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                kinds.check(
                    rt,
                    new,
                    [
                        cause(
                            "FieldValueForbidden",
                            "metadata.finalizers",
                            "Forbidden: no new finalizers can be added if the object is being "
                            "deleted, found new finalizers " + json.dumps(sorted(added)),
                        )
                    ],
                )
        warnings = self._update_rules(rt, new, old, opts)
        if not opts.applied:
            new = self._track(rt, old, new, opts, subresource)
            meta = new["metadata"]
        if rt.generation and self._spec_changed(rt, old, new):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        if self._same(old, new):
            return Result(old, 200, warnings)
        if opts.dry_run:
            return Result(new, 200, warnings)
        if "deletionTimestamp" in meta and self._finalized(new):
            gone = self.store.remove(rt.storage_key, meta.get("namespace", ""), meta["name"])
            self._after_remove(rt, new)
            return Result(self.stamp(rt, gone or new), 200, warnings)
        stored = self.stamp(rt, self.store.put(rt.storage_key, new, old))
        if rt.plural == "customresourcedefinitions":
            self.registry.set_crd(meta["name"], types_from_crd(stored))
        return Result(stored, 200, warnings)

    @staticmethod
    def _track(
        rt: ResourceType, old: JSON | None, new: JSON, opts: WriteOptions, subresource: str | None
    ) -> JSON:
        """Record a non-apply write in managedFields (operation Update) for later apply conflict detection."""
        from localkube import ssa

        sub = subresource if subresource in ("status", "scale") else None
        return ssa.update_managed_fields(old, new, opts.manager, rt.kind, schema=rt.schema, subresource=sub)

    @staticmethod
    def _finalized(obj: JSON) -> bool:
        if obj["metadata"].get("finalizers"):
            return False
        if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
            return False
        grace = int(obj["metadata"].get("deletionGracePeriodSeconds") or 0)
        return grace == 0 or obj.get("kind") != "Pod"

    def _after_remove(self, rt: ResourceType, obj: JSON) -> None:
        """Cascade that the API server itself performs (CRD removal drops its resources)."""
        if rt.plural == "customresourcedefinitions" and rt.group == "apiextensions.k8s.io":
            for crt in types_from_crd(obj):
                for item in self.store.items(crt.storage_key)[0]:
                    self.store.remove(
                        crt.storage_key, item["metadata"].get("namespace", ""), item["metadata"]["name"]
                    )
            self.registry.set_crd(obj["metadata"]["name"], [])

    def _update_rules(self, rt: ResourceType, new: JSON, old: JSON, opts: WriteOptions) -> list[str]:
        key = rt.storage_key
        if rt.custom:
            return self.schema_pass(rt, new, old, opts)
        if key == "core/pods":
            kinds.check(rt, new, kinds.pod_update_causes(new, old))
        elif key == "core/services":
            kinds.check(rt, new, kinds.service_update_causes(new, old))
        elif key == "batch/jobs":
            kinds.check(rt, new, kinds.job_update_causes(new, old))
        elif key == "core/secrets":
            kinds.check(rt, new, kinds.secret_defaults(new))
        elif key == "core/namespaces":
            new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
            if "deletionTimestamp" in old["metadata"]:
                new.setdefault("status", {})["phase"] = "Terminating"
        elif key == "apiextensions.k8s.io/customresourcedefinitions":
            from localkube import schema as sch

            kinds.check(rt, new, kinds.crd_causes(new, sch.structural_errors))
            kinds.crd_status(new, self.now())
        kinds.check(rt, new, validation_kinds.causes(key, new))
        return []

    @staticmethod
    def _spec_changed(rt: ResourceType, old: JSON, new: JSON) -> bool:
        skip = {"metadata", "status"} if rt.status else {"metadata"}
        return {k: v for k, v in old.items() if k not in skip} != {
            k: v for k, v in new.items() if k not in skip
        }

    @staticmethod
    def _same(old: JSON, new: JSON) -> bool:
        def strip(o: JSON) -> JSON:
            c = dict(o)
            c["metadata"] = {k: v for k, v in o.get("metadata", {}).items() if k not in INTERNAL}
            return c

        return strip(old) == strip(new)
