"""Base model and shared pieces of the ray.io/v1 models (camelCase aliases, lossless round-trip)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from rayside.objects import JSON  # free-form Kubernetes JSON (pod templates, services, env entries...)

Quantity = int | float | str
"""A Kubernetes resource quantity as it appears in YAML (`"500m"`, `2`, `"1Gi"`)."""

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _int_format(fmt: str, low: int) -> Any:
    def extra(schema: JsonDict) -> None:
        schema["format"] = fmt  # the API server enforces the range; no explicit bounds, like KubeRay's CRD
        schema.pop("maximum", None)
        if schema.get("minimum") == low:
            del schema["minimum"]

    return extra


Int32 = Annotated[
    int, Field(ge=_INT32_MIN, le=_INT32_MAX, json_schema_extra=_int_format("int32", _INT32_MIN))
]
"""A Go `int32` field: `format: int32` in the CRD (a field-level `ge=0` still becomes `minimum: 0`)."""

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1, json_schema_extra=_int_format("int64", -(2**63)))]
"""A Go `int64` field (`observedGeneration`): `format: int64` in the CRD."""

ManagedBy = Literal["ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue"]


class KubeModel(BaseModel):
    """Base of every ray.io/v1 model.

    Field names are snake_case in Python and KubeRay's camelCase on the wire (`by_alias=True`). Unknown fields
    are kept (`extra="allow"`) so a YAML written for a newer KubeRay loads without loss and
    `model_dump(by_alias=True, exclude_unset=True)` reproduces the input.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        validate_assignment=False,
    )

    def to_dict(self) -> JSON:
        """The wire form: camelCase keys, only the fields that were set."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


class Condition(KubeModel):
    """A metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: Int64 | None = None


K8S_TYPE = "x-rayside-k8s-type"
"""Schema marker: crdgen puts the Kubernetes type's schema there (see `ray_operator.k8sschema`)."""


def k8s_type(type_name: str) -> JsonDict:
    """`json_schema_extra` of a field that holds a core Kubernetes type (`V1PodTemplateSpec`,
    `List[V1EnvVar]`...): the model keeps it as free-form JSON, the CRD validates it with the real schema."""
    return {K8S_TYPE: type_name}


def cel(rule: str, message: str, **extra: str) -> JsonDict:
    """One `x-kubernetes-validations` entry."""
    entry: JsonDict = {"rule": rule, "message": message}
    entry.update(extra)
    return entry
