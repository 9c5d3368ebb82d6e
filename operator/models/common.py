"""Base model and shared pieces of the ray.io/v1 models (camelCase aliases, lossless round-trip)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

JSON = dict[str, Any]
"""Free-form Kubernetes JSON (pod templates, services, env entries...)."""

Quantity = int | float | str
"""A Kubernetes resource quantity as it appears in YAML (`"500m"`, `2`, `"1Gi"`)."""

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
    observed_generation: int | None = None


def cel(rule: str, message: str, **extra: str) -> JsonDict:
    """One `x-kubernetes-validations` entry."""
    entry: JsonDict = {"rule": rule, "message": message}
    entry.update(extra)
    return entry
