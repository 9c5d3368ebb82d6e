"""Structural OpenAPI v3 schemas of core Kubernetes types (PodTemplateSpec, EnvVar...) for the CRDs.

Generated, not written by hand: the source is the official `kubernetes` Python client, whose model classes
are generated from the Kubernetes OpenAPI definitions. Each class lists every field's Python name → type
string (`openapi_types`) and Python name → wire (camelCase) name (`attribute_map`); its pydantic fields say
which are required and which `object`s are IntOrString (`int | str`). The package does not ship the OpenAPI
JSON itself, and two facts are lost on the way to Python, so they are restored here:

* resource Quantities are plain strings in the client; the fields in `QUANTITY_FIELDS` get Kubernetes'
  Quantity schema (int-or-string with its pattern), like the real definitions;
* integer formats (int32/int64) are not kept, so integers carry no format.

Mapping: `str`/`int`/`float`/`bool` → the JSON type; `datetime` → string date-time; `List[X]` → array;
`Dict[str, X]` → object with `additionalProperties`; IntOrString → `x-kubernetes-int-or-string`; any other
`object` → `x-kubernetes-preserve-unknown-fields`. An embedded ObjectMeta (`template.metadata`) keeps only
labels, annotations, name, namespace and finalizers, as controller-gen's `generateEmbeddedObjectMeta` does
for KubeRay's CRDs. Descriptions are left out to keep the CRDs smaller.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any, get_args

import kubernetes.client.models as k8s_models

Schema = dict[str, Any]

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
QUANTITY_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("V1ResourceRequirements", "limits"),
        ("V1ResourceRequirements", "requests"),
        ("V1VolumeResourceRequirements", "limits"),
        ("V1VolumeResourceRequirements", "requests"),
        ("V1PodSpec", "overhead"),
        ("V1EmptyDirVolumeSource", "size_limit"),
        ("V1ResourceFieldSelector", "divisor"),
    }
)
"""(model class, Python attribute) whose values are resource.Quantity in the Kubernetes API."""

EMBEDDED_META_FIELDS = ("annotations", "finalizers", "labels", "name", "namespace")

_SCALARS: dict[str, Schema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}
_LIST = re.compile(r"^List\[(.+)\]$")
_DICT = re.compile(r"^Dict\[str, (.+)\]$")


def quantity() -> Schema:
    """The schema Kubernetes publishes for a resource.Quantity."""
    return {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY_PATTERN,
        "x-kubernetes-int-or-string": True,
    }


def _int_or_string(model: type[Any], attr: str) -> bool:
    fields = getattr(model, "model_fields", {})
    wire = model.attribute_map[attr]
    field = next((f for n, f in fields.items() if (f.serialization_alias or n) in (wire, attr)), None)
    if field is None:
        return False
    kinds = {getattr(a, "__origin__", a) for a in get_args(field.annotation)} - {type(None)}
    return kinds == {int, str}


def _type_schema(type_name: str, *, quantity_values: bool) -> Schema:
    """The schema of one `openapi_types` type string."""
    if quantity_values and type_name == "str":
        return quantity()
    if type_name in _SCALARS:
        return dict(_SCALARS[type_name])
    if (m := _LIST.match(type_name)) is not None:
        return {"type": "array", "items": _type_schema(m.group(1), quantity_values=False)}
    if (m := _DICT.match(type_name)) is not None:
        values = _type_schema(m.group(1), quantity_values=quantity_values)
        return {"type": "object", "additionalProperties": values}
    if type_name == "object":
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return _model_schema(type_name)


def _field_schema(model: type[Any], attr: str) -> Schema:
    type_name = model.openapi_types[attr]
    if type_name == "object" and _int_or_string(model, attr):
        return {"x-kubernetes-int-or-string": True}
    if type_name == "V1ObjectMeta":
        meta = _model_schema("V1ObjectMeta")
        meta["properties"] = {k: v for k, v in meta["properties"].items() if k in EMBEDDED_META_FIELDS}
        return meta
    return _type_schema(type_name, quantity_values=(model.__name__, attr) in QUANTITY_FIELDS)


def _required(model: type[Any]) -> list[str]:
    fields = getattr(model, "model_fields", {})
    by_wire = {(f.serialization_alias or n): f for n, f in fields.items()}
    return sorted(w for w in model.attribute_map.values() if w in by_wire and by_wire[w].is_required())


@functools.cache
def _cached(name: str) -> Schema:
    model = getattr(k8s_models, name, None)
    if model is None or not hasattr(model, "openapi_types"):
        raise KeyError(f"kubernetes.client.models has no model {name!r}")
    props = {model.attribute_map[attr]: _field_schema(model, attr) for attr in model.openapi_types}
    schema: Schema = {"type": "object", "properties": dict(sorted(props.items()))}
    required = _required(model)
    if required:
        schema["required"] = required
    return schema


def _model_schema(name: str) -> Schema:
    return copy.deepcopy(_cached(name))


def schema_of(type_name: str) -> Schema:
    """The structural schema of a client type string: a model (`V1PodTemplateSpec`) or `List[V1EnvVar]`...
    A fresh copy each call (the YAML dumper would turn shared dicts into anchors)."""
    return _type_schema(type_name, quantity_values=False)
