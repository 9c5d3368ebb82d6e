"""Patch, server-side apply, scale, binding, namespace finalize and delete semantics (extends `Api`)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import yaml

from localkube import fastjson
from localkube import meta as m
from localkube.api import Api, Result
from localkube.errors import ApiError, bad_request, cause, conflict, invalid, not_found, unsupported_patch
from localkube.meta import get_path, set_path
from localkube.options import DeleteOptions, WriteOptions
from localkube.registry import ResourceType
from localkube.store import clone
from rayside.objects import JSON

JOB_ORPHAN_WARNING = (
    "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove "
    "them or set propagationPolicy=Orphan to suppress this warning"
)
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}


def _decode_json(raw: bytes) -> Any:
    try:
        return fastjson.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from None


def _apply_conflict(exc: Any, rt: ResourceType, name: str) -> ApiError:
    causes = list(exc.causes)  # FieldManagerConflict causes, field = ".spec.x"
    details = {"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}
    return ApiError(409, str(exc), reason="Conflict", details=details)


class KubeApi(Api):
    """The full set of write semantics."""

    # -- patch ---------------------------------------------------------------------------------------------
    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        ptype: str,
        raw: bytes,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> Result:
        if opts.force and ptype != "apply":
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [
                    cause(
                        "FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch"
                    )
                ],
            )
        if ptype == "strategic" and rt.custom:
            raise unsupported_patch()
        if ptype == "apply":
            return self.apply(rt, ns, name, raw, opts, subresource)
        body = _decode_json(raw)
        if ptype in ("merge", "strategic") and not isinstance(body, dict):
            raise bad_request("a merge patch must be a JSON object")
        if ptype == "json" and not isinstance(body, list):
            raise bad_request("a JSON patch must be a list of operations")
        with self.store.lock:
            old = self.existing(rt, ns, name)
            if subresource == "scale":
                return self._write_scale(
                    rt, old, self._patched(self.scale_of(rt, old), body, ptype, "Scale"), opts
                )
            patched = self._patched(old, body, ptype, rt.kind)
            self.check_body_type(rt, patched)
            rv = str((patched.get("metadata") or {}).get("resourceVersion") or "")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name)
            meta = patched.setdefault("metadata", {})
            if meta.get("name") != name:
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
                )
            self._fix_ns(rt, meta, ns)
            return self._write_update(rt, old, patched, opts, subresource)

    def _fix_ns(self, rt: ResourceType, meta: JSON, ns: str) -> None:
        if rt.namespaced and meta.get("namespace") != ns:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    @staticmethod
    def _patched(doc: JSON, body: Any, ptype: str, kind: str) -> JSON:
        from localkube import patch as p

        try:  # the patch functions copy `doc` themselves and never mutate it: no clone needed here
            if ptype == "json":
                out = p.json_patch(doc, body)
            elif ptype == "merge":
                out = p.merge_patch(doc, body)
            else:
                out = p.strategic_merge_patch(doc, body, kind)
        except p.PatchError as exc:
            reason = "Invalid" if exc.code == 422 else "BadRequest"
            raise ApiError(exc.code, str(exc), reason=reason) from None
        if not isinstance(out, dict):
            raise ApiError(422, "the patch result is not an object", reason="Invalid")
        return out

    # -- server-side apply ---------------------------------------------------------------------------------
    def apply(
        self, rt: ResourceType, ns: str, name: str, raw: bytes, opts: WriteOptions, subresource: str | None
    ) -> Result:
        from localkube import ssa

        if not opts.field_manager:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [cause("FieldValueRequired", "fieldManager", "Required value: is required for apply patch")],
            )
        try:
            body = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise bad_request(f"error decoding YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(body, dict) or not body.get("apiVersion") or not body.get("kind"):
            raise bad_request("apply patch must be an object with apiVersion and kind")
        self.check_body_type(rt, body)
        meta = body.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if "managedFields" in meta:
            raise bad_request("metadata.managedFields must be nil")
        meta["name"] = name
        with self.store.lock:
            live = self.store.get(rt.storage_key, ns if rt.namespaced else "", name)
            try:
                result = ssa.server_side_apply(
                    live,
                    body,
                    opts.field_manager,
                    opts.force,
                    rt.kind,
                    schema=rt.schema,
                    subresource=subresource,
                )
            except ssa.ApplyConflict as exc:
                raise _apply_conflict(exc, rt, name) from None
            rmeta = result.setdefault("metadata", {})
            rmeta["name"] = name
            if rt.namespaced:
                rmeta["namespace"] = ns
            applied = replace(opts, applied=True)
            if live is None:
                if subresource is not None:
                    raise not_found(rt.plural, rt.group, name)
                rmeta.pop("resourceVersion", None)
                return self.create(rt, ns, result, applied)
            live = self.stamp(rt, live)
            rv = str(meta.get("resourceVersion") or "")
            if rv and rv != live["metadata"]["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name)
            return self._write_update(rt, live, result, applied, subresource)

    # -- scale ---------------------------------------------------------------------------------------------
    def scale_of(self, rt: ResourceType, obj: JSON) -> JSON:
        spec = rt.scale
        if spec is None:
            raise ApiError(404, "the server could not find the requested resource")
        replicas = get_path(obj, spec.spec_path)
        if replicas is None and rt.custom:
            raise ApiError(
                500, f"the spec replicas field {spec.spec_path!r} does not exist", reason="InternalError"
            )
        status: JSON = {"replicas": int(get_path(obj, spec.status_path) or 0)}
        if spec.selector_path:
            sel = get_path(obj, spec.selector_path)
            if sel:
                status["selector"] = sel
        elif not rt.custom:
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        md = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: md[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in md
            },
            "spec": {"replicas": int(replicas or 0)},
            "status": status,
        }

    def get_scale(self, rt: ResourceType, ns: str, name: str) -> JSON:
        return self.scale_of(rt, self.existing(rt, ns, name))

    def update_scale(self, rt: ResourceType, ns: str, name: str, body: JSON, opts: WriteOptions) -> Result:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a Scale object")
        with self.store.lock:
            return self._write_scale(rt, self.existing(rt, ns, name), body, opts)

    def _write_scale(self, rt: ResourceType, old: JSON, scale: JSON, opts: WriteOptions) -> Result:
        self.scale_of(rt, old)
        rv = str((scale.get("metadata") or {}).get("resourceVersion") or "")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, old["metadata"]["name"])
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                old["metadata"]["name"],
                [
                    cause(
                        "FieldValueInvalid",
                        "spec.replicas",
                        f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
                    )
                ],
            )
        new = clone(old)
        assert rt.scale is not None
        set_path(new, rt.scale.spec_path, replicas)
        res = self._write_update(rt, old, new, opts, None)
        return Result(self.scale_of(rt, res.obj), 200, res.warnings)

    # -- pods/binding, namespaces/finalize ------------------------------------------------------------------
    def bind(self, rt: ResourceType, ns: str, name: str, body: JSON, opts: WriteOptions) -> Result:
        target = ((body or {}).get("target") or {}).get("name")
        if not target:
            raise invalid("Binding", "", name, [cause("FieldValueRequired", "target.name", "Required value")])
        with self.store.lock:
            pod = self.existing(rt, ns, name)
            current = pod["spec"].get("nodeName")
            if current:
                raise ApiError(409, f'pod {name} is already assigned to node "{current}"', reason="Conflict")
            if "deletionTimestamp" in pod["metadata"]:
                raise ApiError(
                    409, f"pod {name} is being deleted, cannot be assigned to a host", reason="Conflict"
                )
            new = clone(pod)
            new["spec"]["nodeName"] = target
            conds = [
                c
                for c in new.setdefault("status", {}).get("conditions") or []
                if c.get("type") != "PodScheduled"
            ]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": self.now(),
                }
            )
            new["status"]["conditions"] = conds
            if not opts.dry_run:
                self.store.put(rt.storage_key, new, pod)
        return Result(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
        )

    def finalize(self, rt: ResourceType, name: str, body: JSON, opts: WriteOptions) -> Result:
        with self.store.lock:
            old = self.existing(rt, "", name)
            new = clone(old)
            new["spec"] = dict(new.get("spec") or {})
            new["spec"]["finalizers"] = list(((body or {}).get("spec") or {}).get("finalizers") or [])
            return self._write_update(rt, old, new, opts, None)

    # -- delete --------------------------------------------------------------------------------------------
    def _success(self, rt: ResourceType, obj: JSON) -> JSON:
        md = obj["metadata"]
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": md["name"], "group": rt.group, "kind": rt.plural, "uid": md.get("uid")},
        }

    def _grace(self, rt: ResourceType, obj: JSON, dopts: DeleteOptions) -> int:
        if rt.storage_key != "core/pods":
            return 0
        grace = dopts.grace_period
        if grace is None:
            grace = int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        if not (obj.get("spec") or {}).get("nodeName") or (obj.get("status") or {}).get("phase") in (
            "Succeeded",
            "Failed",
        ):
            grace = 0
        return 1 if grace < 0 else grace

    def delete(self, rt: ResourceType, ns: str, name: str, dopts: DeleteOptions) -> Result:
        with self.store.lock:
            old = self.existing(rt, ns, name)
            md = old["metadata"]
            for key, have in (("uid", md.get("uid")), ("resourceVersion", md.get("resourceVersion"))):
                want = dopts.preconditions.get(key)
                if want and want != have:
                    raise ApiError(
                        409,
                        f"Precondition failed: {key.upper() if key == 'uid' else key}: {want}, {key}: {have}",
                        reason="Conflict",
                    )
            policy = dopts.propagation or ("Orphan" if dopts.orphan else None)
            warnings: list[str] = []
            if policy is None and rt.storage_key == "batch/jobs":
                policy, warnings = "Orphan", [JOB_ORPHAN_WARNING]
            grace = self._grace(rt, old, dopts)
            new = clone(old)
            fins = list(new["metadata"].get("finalizers") or [])
            extra = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(policy or "")
            if extra and extra not in fins:
                fins.append(extra)
            if fins:
                new["metadata"]["finalizers"] = fins
            if "deletionTimestamp" in md:
                return self._redelete(rt, old, new, grace, dopts, warnings)
            pending = (
                bool(fins)
                or grace > 0
                or bool(
                    (old.get("spec") or {}).get("finalizers")
                    if rt.storage_key == "core/namespaces"
                    else False
                )
            )
            if not pending:
                return self._remove(rt, old, dopts, warnings)
            new["metadata"]["deletionTimestamp"] = m.rfc3339(self.clock() + grace)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            if int(md.get("generation") or 0) > 0:
                new["metadata"]["generation"] = int(md["generation"]) + 1
            if rt.storage_key == "core/namespaces":
                new.setdefault("status", {})["phase"] = "Terminating"
            if dopts.dry_run:
                return Result(new, 200, warnings)
            return Result(self.stamp(rt, self.store.put(rt.storage_key, new, old)), 200, warnings)

    def _redelete(
        self, rt: ResourceType, old: JSON, new: JSON, grace: int, dopts: DeleteOptions, warnings: list[str]
    ) -> Result:
        old_grace = int(old["metadata"].get("deletionGracePeriodSeconds") or 0)
        if rt.storage_key == "core/pods" and grace < old_grace:
            if grace == 0 and not old["metadata"].get("finalizers"):
                return self._remove(rt, old, dopts, warnings)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            new["metadata"]["deletionTimestamp"] = m.rfc3339(self.clock() + grace)
            if not dopts.dry_run:
                return Result(self.stamp(rt, self.store.put(rt.storage_key, new, old)), 200, warnings)
        return Result(old, 200, warnings)

    def _remove(self, rt: ResourceType, old: JSON, dopts: DeleteOptions, warnings: list[str]) -> Result:
        md = old["metadata"]
        if not dopts.dry_run:
            last = self.store.remove(rt.storage_key, md.get("namespace", ""), md["name"]) or old
            self._after_remove(rt, old)
            old = self.stamp(rt, last)
        body = old if rt.delete_returns_object else self._success(rt, old)
        return Result(body, 200, warnings)

    def delete_collection(
        self, rt: ResourceType, ns: str | None, items: list[JSON], dopts: DeleteOptions
    ) -> Result:
        out: list[JSON] = []
        warnings: list[str] = []
        for item in items:
            md = item["metadata"]
            try:
                res = self.delete(rt, md.get("namespace", ""), md["name"], dopts)
            except ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            warnings.extend(w for w in res.warnings if w not in warnings)
            out.append(item if res.obj.get("kind") == "Status" else res.obj)
        body = {
            "kind": rt.list_kind_name,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": out,
        }
        return Result(body, 200, warnings)
