"""Just enough Kubernetes protobuf decoding for kubectl's imperative generators.

`kubectl create namespace|configmap|secret|serviceaccount` POST protobuf (`k8s\\x00` + `runtime.Unknown`)
and do not retry with JSON after a 415. This decodes those few kinds into their JSON form; every other kind
still gets 415 UnsupportedMediaType.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

MAGIC = b"k8s\x00"
Fields = dict[int, list[Any]]


class ProtobufError(ValueError):
    """The body is not a protobuf message this server understands."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Fields:
    """Field number -> values (ints for varints, bytes for length-delimited)."""
    out: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _text(f: Fields, n: int) -> str | None:
    values = f.get(n)
    return values[-1].decode() if values else None


def _map(f: Fields, n: int, binary: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in f.get(n, []):
        kv = fields(entry)
        key = _text(kv, 1) or ""
        raw = kv.get(2, [b""])[-1]
        out[key] = base64.b64encode(raw).decode() if binary else raw.decode()
    return out


def _meta(data: bytes) -> dict[str, Any]:
    f = fields(data)
    meta: dict[str, Any] = {}
    for n, key in ((1, "name"), (2, "generateName"), (3, "namespace")):
        value = _text(f, n)
        if value:
            meta[key] = value
    for n, key in ((11, "labels"), (12, "annotations")):
        values = _map(f, n)
        if values:
            meta[key] = values
    if f.get(14):
        meta["finalizers"] = [v.decode() for v in f[14]]
    return meta


def _namespace(f: Fields) -> dict[str, Any]:
    spec = fields(f[2][-1]) if f.get(2) else {}
    obj: dict[str, Any] = {}
    if spec.get(1):
        obj["spec"] = {"finalizers": [v.decode() for v in spec[1]]}
    return obj


def _configmap(f: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if f.get(2):
        obj["data"] = _map(f, 2)
    if f.get(3):
        obj["binaryData"] = _map(f, 3, binary=True)
    if f.get(4):
        obj["immutable"] = bool(f[4][-1])
    return obj


def _secret(f: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if f.get(2):
        obj["data"] = _map(f, 2, binary=True)
    if f.get(3):
        obj["type"] = _text(f, 3)
    if f.get(4):
        obj["stringData"] = _map(f, 4)
    if f.get(5):
        obj["immutable"] = bool(f[5][-1])
    return obj


def _serviceaccount(f: Fields) -> dict[str, Any]:
    return {"automountServiceAccountToken": bool(f[4][-1])} if f.get(4) else {}


KINDS: dict[tuple[str, str], Callable[[Fields], dict[str, Any]]] = {
    ("v1", "Namespace"): _namespace,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Secret"): _secret,
    ("v1", "ServiceAccount"): _serviceaccount,
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of a supported kind (raises ProtobufError otherwise)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    unknown = fields(body[len(MAGIC) :])
    type_meta = fields(unknown.get(1, [b""])[-1])
    api_version, kind = _text(type_meta, 1) or "", _text(type_meta, 2) or ""
    decoder = KINDS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"protobuf bodies are only supported for {', '.join(k for _, k in KINDS)}")
    raw = fields(unknown.get(2, [b""])[-1])
    obj: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": _meta(raw[1][-1]) if raw.get(1) else {},
    }
    obj.update(decoder(raw))
    return obj
