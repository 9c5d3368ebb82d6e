"""Field validation of built-in kinds, with kube-apiserver's field paths and messages (pure: no I/O).

Two kinds of refusal, as kube-apiserver has them:

* `decode_error(kind, obj)`: a value of the wrong JSON type (a string where a list is declared, a number in
  ConfigMap `data`, invalid base64 in Secret `data`) cannot be decoded into the typed object: 400 with
  `<Kind> in version "v1" cannot be handled as a <Kind>: json: cannot unmarshal ...`.
* `validate(storage_key, obj)`: a well-typed object whose values are not allowed: a list of causes
  (`{reason, message, field}`) for a 422 `Invalid` (rendered by `localkube.errors.invalid`).

The per-kind rules live in `localkube/validation_kinds.py` (one function per kind in one table); this module
holds the shared checks (names, labels-style identifiers, ports, enums, sizes) and the type walker.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from localkube.errors import cause

Cause = dict[str, str]
DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
MAX_ANNOTATION_BYTES = 256 * 1024
_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1035 = re.compile(f"^{DNS1035_LABEL_FMT}$")
_CONFIG_KEY = re.compile(f"^{CONFIG_KEY_FMT}$")
_QUALIFIED_NAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FMT}$")
_PORT_NAME_CHARS = re.compile("^[-a-z0-9]+$")
_PORT_NAME_LETTER = re.compile("[a-z]")
MAX_CONFIG_BYTES = 1024 * 1024  # ConfigMap and Secret data (kube's MaxSecretSize)


def show(value: Any) -> str:
    """A value as kube prints it after `Invalid value: ` (strings quoted, numbers bare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    text = msg
    if examples:
        text += " (e.g. " + " or ".join(f"'{e}', " for e in examples)
    else:
        text += " ("
    return text + f"regex used for validation is '{fmt}')"


LABEL_MSG = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character",
    DNS1123_LABEL_FMT,
    "my-name",
    "123-abc",
)
SUBDOMAIN_MSG = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character",
    DNS1123_SUBDOMAIN_FMT,
    "example.com",
)
DNS1035_MSG = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character",
    DNS1035_LABEL_FMT,
    "my-name",
    "abc-123",
)
CONFIG_KEY_MSG = _regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    CONFIG_KEY_FMT,
    "key.name",
    "KEY_NAME",
    "key-name",
)


QUALIFIED_NAME_MSG = _regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character",
    QUALIFIED_NAME_FMT,
    "MyName",
    "my.name",
    "123-abc",
)
LABEL_VALUE_MSG = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character",
    LABEL_VALUE_FMT,
    "MyValue",
    "my_value",
    "12345",
)


def invalid(path: str, value: Any, msg: str) -> Cause:
    return cause("FieldValueInvalid", path, f"Invalid value: {show(value)}: {msg}")


def required(path: str, detail: str = "") -> Cause:
    return cause("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def not_supported(path: str, value: Any, allowed: Sequence[str]) -> Cause:
    listed = ", ".join(json.dumps(a) for a in allowed)
    what = f"Unsupported value: {show(value)}: supported values: {listed}"
    return cause("FieldValueNotSupported", path, what)


def duplicate(path: str, value: Any) -> Cause:
    return cause("FieldValueDuplicate", path, f"Duplicate value: {show(value)}")


def too_long(path: str, limit: int) -> Cause:
    unit = "byte" if limit == 1 else "bytes"
    return cause("FieldValueTooLong", path, f"Too long: may not be more than {limit} {unit}")


# -- names -------------------------------------------------------------------------------------------------
def dns1123_label(path: str, value: str) -> list[Cause]:
    out = []
    if len(value) > 63:
        out.append(invalid(path, value, "must be no more than 63 characters"))
    if not _LABEL.match(value):
        out.append(invalid(path, value, LABEL_MSG))
    return out


def subdomain_problems(value: str) -> list[str]:
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not _SUBDOMAIN.match(value):
        out.append(SUBDOMAIN_MSG)
    return out


def dns1123_subdomain(path: str, value: str) -> list[Cause]:
    return [invalid(path, value, msg) for msg in subdomain_problems(value)]


def dns1035_label(path: str, value: str) -> list[Cause]:
    out = []
    if len(value) > 63:
        out.append(invalid(path, value, "must be no more than 63 characters"))
    if not _DNS1035.match(value):
        out.append(invalid(path, value, DNS1035_MSG))
    return out


def path_segment(path: str, value: str) -> list[Cause]:
    """RBAC object names: anything usable as one URL path segment (e.g. `system:controller:x`)."""
    if value in (".", ".."):
        return [invalid(path, value, f"may not be '{value}'")]
    return [invalid(path, value, f"may not contain '{ch}'") for ch in ("/", "%") if ch in value]


NameCheck = Callable[[str, str], list[Cause]]
NAME_RULES: dict[str, NameCheck] = {
    "core/namespaces": dns1123_label,
    "core/services": dns1035_label,
    "rbac.authorization.k8s.io/roles": path_segment,
    "rbac.authorization.k8s.io/rolebindings": path_segment,
    "rbac.authorization.k8s.io/clusterroles": path_segment,
    "rbac.authorization.k8s.io/clusterrolebindings": path_segment,
}


def name_causes(storage_key: str, meta: dict[str, Any]) -> list[Cause]:
    """metadata.name (or generateName) of an object of `storage_key` (e.g. `core/pods`)."""
    name = meta.get("name")
    if not name:
        return [required("metadata.name", "name or generateName is required")]
    check = NAME_RULES.get(storage_key, dns1123_subdomain)
    return check("metadata.name", str(name))


def qualified_name(value: str) -> list[str]:
    """Problems of a label or annotation key (`[prefix/]name`), in kube's words."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name " + QUALIFIED_NAME_MSG + " with an optional DNS subdomain prefix and '/' (e.g. "
            "'example.com/MyName')"
        ]
    errs = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + msg for msg in subdomain_problems(prefix)]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.match(name):
        errs.append("name part " + QUALIFIED_NAME_MSG)
    return errs


def label_causes(meta: dict[str, Any]) -> list[Cause]:
    """metadata.labels and metadata.annotations as kube validates them (keys, values, annotation size)."""
    out: list[Cause] = []
    for key, raw in sorted((meta.get("labels") or {}).items()):
        out += [invalid("metadata.labels", key, msg) for msg in qualified_name(str(key))]
        value = str(raw)
        if len(value) > 63:
            out.append(invalid("metadata.labels", value, "must be no more than 63 characters"))
        if not _LABEL_VALUE.match(value):
            out.append(invalid("metadata.labels", value, LABEL_VALUE_MSG))
    annotations = meta.get("annotations") or {}
    for key in sorted(annotations):
        out += [invalid("metadata.annotations", key, msg) for msg in qualified_name(str(key).lower())]
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > MAX_ANNOTATION_BYTES:
        out.append(too_long("metadata.annotations", MAX_ANNOTATION_BYTES))
    return out


def config_key(path: str, key: str) -> list[Cause]:
    out = []
    if len(key) > 253:
        out.append(invalid(path, key, "must be no more than 253 characters"))
    if not _CONFIG_KEY.match(key):
        out.append(invalid(path, key, CONFIG_KEY_MSG))
    elif key in (".", ".."):
        out.append(invalid(path, key, f"must not be '{key}'"))
    elif key.startswith(".."):
        out.append(invalid(path, key, "must not start with '..'"))
    return out


def port_number(path: str, value: Any) -> list[Cause]:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def port_name(path: str, name: str) -> list[Cause]:
    """An IANA service name (container and Service port names)."""
    msgs = []
    if len(name) > 15:
        msgs.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(name):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(name):
        msgs.append("must contain at least one letter (a-z)")
    if "--" in name:
        msgs.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        msgs.append("must not begin or end with a hyphen")
    return [invalid(path, name, m) for m in msgs]


def enum(path: str, value: Any, allowed: Sequence[str], *, optional: bool = True) -> list[Cause]:
    if value is None or value == "":
        return [] if optional else [required(path)]
    return [] if value in allowed else [not_supported(path, value, allowed)]


def non_negative(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def data_size(path: str, sizes: list[int]) -> list[Cause]:
    return [too_long(path, MAX_CONFIG_BYTES)] if sum(sizes) > MAX_CONFIG_BYTES else []


# -- decoding (400) ----------------------------------------------------------------------------------------
class Struct:
    """A typed Go struct for `decode_error`: its Go name and the declared type of each JSON field."""

    def __init__(self, go_name: str, fields: dict[str, Any]) -> None:
        self.go_name = go_name
        self.fields = fields


class ListOf:
    def __init__(self, item: Any, go_type: str) -> None:
        self.item, self.go_type = item, go_type


class MapOf:
    def __init__(self, item: Any, go_type: str) -> None:
        self.item, self.go_type = item, go_type


class Base64:
    """`[]byte` in JSON: a base64 string."""


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_SCALARS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int32": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "int64": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
}


def _go_type(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Struct):
        return "v1." + spec.go_name
    if isinstance(spec, Base64):
        return "[]uint8"
    return str(spec.go_type)


def _mismatch(value: Any, struct: str, path: str, spec: Any) -> str:
    shown = _json_type(value)
    if shown == "number" and spec in ("int32", "int64"):
        shown = f"number {value}"
    return f"json: cannot unmarshal {shown} into Go struct field {struct}.{path} of type {_go_type(spec)}"


def _check(value: Any, spec: Any, struct: str, path: str) -> str | None:
    """The first decoding error of `value` against `spec` (None: decodes); JSON null is always accepted."""
    if value is None:
        return None
    if isinstance(spec, str):
        return None if _SCALARS[spec](value) else _mismatch(value, struct, path, spec)
    if isinstance(spec, Base64):
        if not isinstance(value, str):
            return _mismatch(value, struct, path, spec)
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return f"illegal base64 data at input byte {_bad_byte(value)}"
        return None
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            return _mismatch(value, struct, path, spec)
        return next((e for e in (_check(v, spec.item, struct, path) for v in value) if e), None)
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            return _mismatch(value, struct, path, spec)
        return next((e for e in (_check(v, spec.item, struct, path) for v in value.values()) if e), None)
    assert isinstance(spec, Struct)
    if not isinstance(value, dict):
        return _mismatch(value, struct, path, spec)
    for key, sub in spec.fields.items():
        err = _check(value.get(key), sub, spec.go_name, f"{path}.{key}" if path else key)
        if err:
            return err
    return None


def _bad_byte(text: str) -> int:
    alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    raw = text.encode()
    for i, byte in enumerate(raw):
        if byte not in alphabet:
            return i
    return len(raw) - len(raw) % 4 if len(raw) % 4 else max(0, len(raw) - 1)


def decode_error(kind: str, api_version: str, spec: Struct, obj: Any) -> str | None:
    """The 400 message when `obj` does not decode into `spec` (None: it decodes)."""
    err = _check(obj, spec, spec.go_name, "")
    if err is None:
        return None
    version = api_version.rpartition("/")[2] or "v1"
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {err}'
