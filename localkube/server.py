"""The API server application: authentication, routing, verbs, tables, watches, pod logs, admin paths."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from localkube import discovery as disc
from localkube import events
from localkube.errors import ApiError, bad_request, conflict, unsupported_patch
from localkube.faults import Faults
from localkube.httpio import Chunked, Request, encode_json, send_error, send_json, send_text
from localkube.options import DeleteOptions, ListOptions, WriteOptions
from localkube.registry import ResourceType
from localkube.watch import WatchStream
from localkube.writes import PATCH_TYPES, KubeApi

log = logging.getLogger(__name__)
NOT_FOUND = "the server could not find the requested resource"
HEALTH = {"healthz", "livez", "readyz"}
PUBLIC = {"healthz", "livez", "readyz", "version"}  # like system:public-info-viewer
INCLUDE_OBJECT = ("None", "Metadata", "Object")


def _json_line(event: dict[str, Any]) -> bytes:
    return encode_json(event) + b"\n"


class Route:
    """A resource request: the type (for a view such as events.k8s.io, the stored type and the view)."""

    def __init__(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str | None,
        sub: str | None,
        view: ResourceType | None = None,
    ) -> None:
        self.rt, self.ns, self.name, self.sub, self.view = rt, ns, name, sub, view

    @property
    def shown(self) -> ResourceType:
        return self.view or self.rt


class ApiServer:
    """Turns HTTP requests into `KubeApi` calls and writes Kubernetes-shaped responses."""

    def __init__(
        self,
        api: KubeApi,
        faults: Faults,
        tokens: set[str] | None = None,
        anonymous: bool = True,
        bookmark_interval: float = 60.0,
        kubelet_token: str = "",
    ) -> None:
        self.api = api
        self.kubelet_token = kubelet_token  # presented to kubelets when proxying pods/log
        self.faults = faults
        self.tokens = tokens or set()
        self.anonymous = anonymous
        self.bookmark_interval = bookmark_interval
        self.address = "127.0.0.1:0"

    # -- entry ---------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> None:
        try:
            self._handle(req)
        except ApiError as exc:
            send_error(req, exc)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away: %s %s", req.method, req.path)
        except RecursionError:  # a body nested deeper than any processing step can walk: the client's fault
            send_error(req, bad_request("the object is nested too deeply: exceeded max depth"))
        except Exception as exc:  # a server bug must still answer with a Status
            log.exception("internal error on %s %s", req.method, req.path)
            send_error(req, ApiError(500, f"internal error: {type(exc).__name__}: {exc}"))

    def _authenticate(self, req: Request) -> None:
        auth = req.header("authorization")
        if auth.lower().startswith("bearer "):
            if self.tokens and auth[7:].strip() not in self.tokens:
                raise ApiError(401, "Unauthorized")
            return
        if not self.anonymous:
            raise ApiError(401, "Unauthorized")

    def _handle(self, req: Request) -> None:
        seg = req.segments
        if len(seg) == 1 and seg[0] in HEALTH:
            send_text(req, 200, "ok")
            return
        if not (len(seg) == 1 and seg[0] in PUBLIC) or req.header("authorization"):
            self._authenticate(req)  # public paths still reject a wrong token, like kube-apiserver
        if seg[:1] == ["localkube"]:
            self._admin(req)
        elif seg == ["version"]:
            send_json(req, 200, disc.VERSION)
        elif seg[:1] == ["openapi"]:
            self._openapi(req)
        elif seg[:1] == ["api"]:
            self._core(req)
        elif seg[:1] == ["apis"]:
            self._groups(req)
        else:
            raise ApiError(404, NOT_FOUND)

    # -- discovery -----------------------------------------------------------------------------------------
    def _core(self, req: Request) -> None:
        seg = req.segments
        if len(seg) == 1:
            if disc.wants_aggregated(req.header("accept")):
                self._send_aggregated(req, core=True)
                return
            send_json(req, 200, disc.api_versions(self.address))
        elif len(seg) == 2:
            self._send_found(req, disc.resource_list(self.api.registry, "", seg[1]))
        else:
            self._resource(req, "", seg[1], seg[2:])

    def _groups(self, req: Request) -> None:
        seg = req.segments
        if len(seg) == 1:
            if disc.wants_aggregated(req.header("accept")):
                self._send_aggregated(req, core=False)
                return
            send_json(req, 200, disc.api_group_list(self.api.registry))
        elif len(seg) == 2:
            self._send_found(req, disc.api_group(self.api.registry, seg[1]))
        elif len(seg) == 3:
            self._send_found(req, disc.resource_list(self.api.registry, seg[1], seg[2]))
        else:
            self._resource(req, seg[1], seg[2], seg[3:])

    def _send_aggregated(self, req: Request, core: bool) -> None:
        send_json(req, 200, disc.aggregated(self.api.registry, core), content_type=disc.AGGREGATED_TYPE)

    def _send_found(self, req: Request, body: dict[str, Any] | None) -> None:
        if body is None:
            raise ApiError(404, NOT_FOUND)
        send_json(req, 200, body)

    def _openapi(self, req: Request) -> None:
        seg = req.segments
        if seg[:2] != ["openapi", "v3"]:
            raise ApiError(404, NOT_FOUND)
        reg = self.api.registry
        if len(seg) == 2:
            send_json(req, 200, disc.openapi_index(reg))
            return
        rest = seg[2:]
        doc = None
        if rest[0] == "api" and len(rest) == 2:
            doc = disc.openapi_doc(reg, "", rest[1])
        elif rest[0] == "apis" and len(rest) == 3:
            doc = disc.openapi_doc(reg, rest[1], rest[2])
        self._send_found(req, doc)

    def _admin(self, req: Request) -> None:
        what = req.segments[1:2]
        if what == ["faults"]:
            if req.method == "PUT":
                try:
                    self.faults.update_from(req.json_body() or {})
                except (ValueError, TypeError) as exc:
                    raise bad_request(str(exc)) from None
            send_json(req, 200, self.faults.to_dict())
        elif what == ["compact"] and req.method == "POST":
            send_json(req, 200, {"compactedResourceVersion": str(self.api.store.compact())})
        else:
            raise ApiError(404, NOT_FOUND)

    # -- resources -----------------------------------------------------------------------------------------
    def _route(self, group: str, version: str, seg: list[str]) -> Route:
        reg = self.api.registry
        ns: str | None = None
        rest = seg
        if len(seg) >= 3 and seg[0] == "namespaces":
            cand = reg.lookup(group, version, seg[2])
            if cand is not None and cand.namespaced:
                ns, rest = seg[1], seg[2:]
        rt = reg.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3 or (ns is None and rt.namespaced and len(rest) > 1):
            raise ApiError(404, NOT_FOUND)
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and sub not in rt.subresources():
            raise ApiError(404, NOT_FOUND)
        route = Route(rt, ns, rest[1] if len(rest) > 1 else None, sub)
        if rt.group == "events.k8s.io":
            core = reg.lookup("", "v1", "events")
            assert core is not None
            route = Route(core, ns, route.name, sub, view=rt)
        return route

    # -- views (events.k8s.io/v1 over core/v1 Events) --------------------------------------------------
    def _present(self, r: Route, obj: dict[str, Any]) -> dict[str, Any]:
        if r.view is None:
            return obj
        if obj.get("kind") == "Event":
            return events.from_core(obj)
        if obj.get("kind") == "EventList":
            return {
                **obj,
                "apiVersion": r.view.api_version,
                "items": [events.from_core(i) for i in obj["items"]],
            }
        return obj

    def _intake(self, r: Route, body: Any, create: bool) -> Any:
        if r.view is None or not isinstance(body, dict):
            return body
        self.api.check_body_type(r.view, body)
        if create:
            events.check_view_create(body)
        return events.to_core(body)

    def _view_patch(self, req: Request, r: Route, ptype: str, wopts: WriteOptions) -> Any:
        assert r.name is not None and r.view is not None
        if ptype not in ("json", "merge"):
            raise unsupported_patch()
        with self.api.store.lock:
            old = self.api.get(r.rt, r.ns or "", r.name)
            try:
                body = json.loads(req.body or b"null")
            except ValueError as exc:
                raise bad_request(f"error decoding patch: {exc}") from None
            patched = self.api._patched(events.from_core(old), body, ptype, "Event")
            rv = str((patched.get("metadata") or {}).get("resourceVersion") or "")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(r.view.plural, r.view.group, r.name)
            core = self._intake(r, patched, create=False)
            return self.api.update(r.rt, r.ns or "", r.name, core, wopts, precondition_checked=True)

    def _verb(self, req: Request, r: Route, opts: ListOptions | None) -> str:
        if req.method == "GET":
            if r.name is None:
                return "watch" if opts and opts.watch else "list"
            return "get"
        return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            req.method, "get"
        )

    def _inject(self, verb: str, r: Route) -> None:
        if self.faults.latency:
            time.sleep(self.faults.latency)
        code = self.faults.pick(verb)
        if code is None:
            return
        log.debug("fault injected: %s %s -> %d", verb, r.rt.plural, code)
        if code == 409:
            from localkube.errors import conflict

            raise conflict(r.rt.plural, r.rt.group, r.name or "")
        if code == 429:
            raise ApiError(
                429,
                "Too many requests, please try again later.",
                headers={"Retry-After": "1"},
                details={"retryAfterSeconds": 1},
            )
        raise ApiError(
            code, "injected fault", reason="InternalError" if code == 500 else "ServiceUnavailable"
        )

    def _resource(self, req: Request, group: str, version: str, seg: list[str]) -> None:
        r = self._route(group, version, seg)
        lopts = ListOptions.from_query(req.query) if req.method == "GET" and r.name is None else None
        self._inject(self._verb(req, r, lopts), r)
        wopts = WriteOptions.from_query(req.query, req.header("user-agent"))
        ns = r.ns or ""
        if req.method == "GET":
            self._get(req, r, lopts)
        elif req.method == "POST":
            if r.name is None:
                self._reply(req, r, self.api.create(r.rt, ns, self._intake(r, req.json_body(), True), wopts))
            elif r.sub == "binding":
                self._reply(req, r, self.api.bind(r.rt, ns, r.name, req.json_body(), wopts))
            else:
                raise ApiError(405, "the server does not allow this method on the requested resource")
        elif req.method in ("PUT", "PATCH") and r.name is not None:
            self._put_patch(req, r, wopts)
        elif req.method == "DELETE":
            self._delete(req, r)
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")

    def _put_patch(self, req: Request, r: Route, wopts: WriteOptions) -> None:
        assert r.name is not None
        ns = r.ns or ""
        if req.method == "PATCH":
            ptype = PATCH_TYPES.get(req.content_type)
            if ptype is None:
                from localkube.errors import unsupported_patch

                raise unsupported_patch()
            if r.sub not in (None, "status", "scale"):
                raise ApiError(405, "the server does not allow this method on the requested resource")
            if r.view is not None:
                self._reply(req, r, self._view_patch(req, r, ptype, wopts))
                return
            self._reply(req, r, self.api.patch(r.rt, ns, r.name, ptype, req.body, wopts, r.sub))
        elif r.sub == "scale":
            self._reply(req, r, self.api.update_scale(r.rt, ns, r.name, req.json_body(), wopts))
        elif r.sub == "finalize":
            self._reply(req, r, self.api.finalize(r.rt, r.name, req.json_body(), wopts))
        elif r.sub in (None, "status"):
            body = self._intake(r, req.json_body(), False)
            self._reply(req, r, self.api.update(r.rt, ns, r.name, body, wopts, r.sub))
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")

    def _reply(self, req: Request, r: Route, res: Any) -> None:
        self.api.store.sync()  # acknowledge a write only once it is durable (with --data-dir)
        send_json(req, res.code, self._present(r, res.obj), warnings=res.warnings)

    def _delete(self, req: Request, r: Route) -> None:
        body = req.json_body() if req.body.strip() else None
        dopts = DeleteOptions.parse(req.query, body)
        if r.name is not None:
            if r.sub is not None:
                raise ApiError(405, "the server does not allow this method on the requested resource")
            self._reply(req, r, self.api.delete(r.rt, r.ns or "", r.name, dopts))
            return
        items, _meta = self.api.list_objects(r.rt, r.ns, ListOptions.from_query(req.query))
        self._reply(req, r, self.api.delete_collection(r.rt, r.ns, items, dopts))

    # -- reads ---------------------------------------------------------------------------------------------
    @staticmethod
    def _wants_table(req: Request) -> bool:
        if "as=table" not in req.header("accept").lower().replace(" ", ""):
            return False
        try:  # kubectl accepts plain lists too, so a missing table module only costs columns
            import localkube.table  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            return False
        return True

    @staticmethod
    def _include_object(req: Request) -> str:
        """The `includeObject` query parameter (kubectl --sort-by sends `Object`); kube's default Metadata."""
        value = (req.query.get("includeObject") or ["Metadata"])[0] or "Metadata"
        if value not in INCLUDE_OBJECT:
            raise bad_request(
                f'Invalid value: "{value}": includeObject: supported values: "None", "Metadata", "Object"'
            )
        return value

    def _table(
        self, req: Request, r: Route, objs: list[dict[str, Any]], meta: dict[str, Any]
    ) -> dict[str, Any]:
        from localkube.table import table_for  # type: ignore[import-not-found,unused-ignore]

        cols = list(r.rt.printer_columns) if r.rt.printer_columns is not None else None
        table: dict[str, Any] = table_for(
            objs, r.shown.kind, cols, meta, include_object=self._include_object(req)
        )
        return table

    def _get(self, req: Request, r: Route, lopts: ListOptions | None) -> None:
        ns = r.ns or ""
        if r.name is None:
            assert lopts is not None
            if lopts.watch:
                self._watch(req, r, lopts)
                return
            items, meta = self.api.list_objects(r.rt, r.ns, lopts)
            items = [self._present(r, i) for i in items]
            if self._wants_table(req):
                send_json(req, 200, self._table(req, r, items, meta))
                return
            send_json(
                req,
                200,
                {
                    "kind": r.shown.list_kind_name,
                    "apiVersion": r.shown.api_version,
                    "metadata": meta,
                    "items": items,
                },
            )
            return
        if r.sub == "log":
            self._logs(req, r)
            return
        if r.sub == "scale":
            send_json(req, 200, self.api.get_scale(r.rt, ns, r.name))
            return
        obj = self._present(r, self.api.get(r.rt, ns, r.name))
        if self._wants_table(req) and r.sub is None:
            send_json(
                req,
                200,
                self._table(req, r, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}),
            )
            return
        send_json(req, 200, obj)

    def _watch(self, req: Request, r: Route, lopts: ListOptions) -> None:
        table = self._wants_table(req)
        if table:
            self._include_object(req)  # a bad value is a 400 before the stream starts
        stream = WatchStream(
            self.api,
            r.rt,
            r.ns,
            lopts,
            bookmark_interval=self.bookmark_interval,
            alive=req.alive,
            drop_after=self.faults.watch_drop_after,
        )
        out = Chunked(req, "application/json")
        try:
            if table or r.view is not None:
                for line in self._watch_lines(req, r, stream, table):
                    out.write(line)
            else:  # plain JSON: each event is encoded once for all watchers
                for line in stream.lines(_json_line):
                    out.write(line)
            out.close()
            return  # a cleanly terminated chunked body leaves the connection reusable (keep-alive)
        except OSError:
            log.debug("watch client went away: %s", req.path)
        except Exception:  # headers are sent: a Status can no longer be answered, end the stream instead
            log.exception("watch on %s failed", req.path)
        req.handler.close_connection = True  # the body was cut short: the connection cannot be reused

    def _watch_lines(self, req: Request, r: Route, stream: WatchStream, table: bool) -> Iterator[bytes]:
        """Watch events through a view (events.k8s.io) and/or as Table rows (kubectl get -w)."""
        for event in stream:
            if event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
                yield _json_line(event)
                continue
            obj = self._present(r, event["object"])
            if table:
                obj = self._table(req, r, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]})
            yield _json_line({"type": event["type"], "object": obj})

    def _logs(self, req: Request, r: Route) -> None:
        assert r.name is not None
        ns = r.ns or ""
        pod = self.api.get(r.rt, ns, r.name)
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = (req.query.get("container") or [""])[0]
        if not container:
            if len(names) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {r.name}, choose one of: "
                    f"[{' '.join(str(n) for n in names)}]"
                )
            container = str(names[0])
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise bad_request(f"pod {r.name} does not have a host assigned")
        node = self.api.store.get("core/nodes", "", node_name) or {}
        status = node.get("status") or {}
        ip = next(
            (a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None
        )
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not ip or not port:
            raise ApiError(500, f"node {node_name} has no kubelet endpoint (InternalIP and daemonEndpoints)")
        keys = ("follow", "tailLines", "previous", "timestamps", "sinceSeconds", "sinceTime", "limitBytes")
        params = {k: req.query[k][0] for k in keys if req.query.get(k)}
        url = f"http://{ip}:{port}/containerLogs/{ns}/{r.name}/{container}"
        if params:
            url += "?" + urlencode(params)
        self._proxy(req, url)

    def _proxy(self, req: Request, url: str) -> None:
        try:
            headers = {"Authorization": f"Bearer {self.kubelet_token}"} if self.kubelet_token else {}
            upstream = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=3600)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace").strip()
            raise ApiError(
                exc.code if exc.code < 500 else 500, text or f"kubelet answered {exc.code}"
            ) from None
        except OSError as exc:
            raise ApiError(500, f"cannot reach the kubelet at {url}: {exc}") from None
        with upstream:
            out = Chunked(req, "text/plain")
            try:
                while True:
                    data = upstream.read1(65536)
                    if not data:
                        break
                    out.write(data)
                out.close()
                return  # cleanly terminated: the connection stays reusable (keep-alive)
            except OSError:
                log.debug("log client went away: %s", req.path)
            except Exception:
                log.exception("log stream of %s failed", req.path)
        req.handler.close_connection = True  # the body was cut short: the connection cannot be reused
