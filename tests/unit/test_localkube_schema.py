"""CRD structural schema: structural checks, pruning, defaulting, validation messages and CEL rules."""

from __future__ import annotations

from typing import Any

import pytest

from localkube.schema import (
    FieldError,
    apply_defaults,
    field_error_cause,
    format_invalid,
    prune,
    structural_errors,
    validate,
)

WIDGET: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "port": {"x-kubernetes-int-or-string": True},
                "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                    "maxItems": 3,
                },
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "n": {"type": "integer", "format": "int32"},
                        },
                    },
                },
                "when": {"type": "string", "format": "date-time"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
                "nothing": {"type": "string", "nullable": True, "default": "d"},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1},
            },
        },
        "status": {"type": "object", "properties": {"readyReplicas": {"type": "integer"}}},
    },
}


def errors(
    obj: dict[str, Any], schema: dict[str, Any] = WIDGET, old: dict[str, Any] | None = None
) -> list[str]:
    from localkube.schema import format_error

    return [format_error(e) for e in validate(obj, schema, old)]


def test_widget_schema_is_structural() -> None:
    assert structural_errors(WIDGET) == []


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        (
            {"type": "object", "properties": {"spec": {"properties": {}}}},
            "properties[spec].type: Required value",
        ),
        ({"type": "object", "properties": {"a": {"type": "array"}}}, "properties[a].items: Required value"),
        ({"type": "string"}, 'type: Unsupported value: "string"'),
        (
            {"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-int-or-string": True}}},
            "must be empty if x-kubernetes-int-or-string",
        ),
        (
            {
                "type": "object",
                "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}},
            },
            "properties[metadata]: Forbidden",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}
                },
            },
            "mutual exclusive",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"}
                },
            },
            "x-kubernetes-list-map-keys: Required value",
        ),
        (
            {"type": "object", "x-kubernetes-validations": [{"rule": "self.a ==="}]},
            "x-kubernetes-validations[0].rule: Invalid value",
        ),
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "$ref: Forbidden"),
    ],
)
def test_structural_errors(schema: dict[str, Any], fragment: str) -> None:
    found = structural_errors(schema)
    assert any(fragment in e for e in found), found


def test_prune_unknown_fields_and_keeps_preserved() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "junk": 1},
        "spec": {
            "unknown": 1,
            "extra": {"anything": {"a": 1}},
            "ports": [{"name": "a", "bogus": 2}],
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "x", "odd": 1},
                "spec": {"z": 1},
            },
        },
        "topLevel": True,
    }
    pruned, unknown = prune(obj, WIDGET)
    assert "unknown" not in pruned["spec"]
    assert pruned["spec"]["extra"] == {"anything": {"a": 1}}
    assert pruned["spec"]["ports"] == [{"name": "a"}]
    assert pruned["spec"]["template"]["spec"] == {"z": 1}
    assert "odd" not in pruned["spec"]["template"]["metadata"]
    assert pruned["metadata"] == {"name": "w"}
    assert sorted(unknown) == sorted(
        ["metadata.junk", "spec.unknown", "spec.ports[0].bogus", "spec.template.metadata.odd", "topLevel"]
    )
    assert obj["spec"]["unknown"] == 1  # input untouched


def test_prune_resumes_inside_properties_of_preserved_node() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    pruned, unknown = prune({"other": 1, "spec": {"a": "x", "b": 2}}, schema)
    assert pruned == {"other": 1, "spec": {"a": "x"}}
    assert unknown == ["spec.b"]


def test_defaults() -> None:
    out = apply_defaults({"spec": {"nothing": None}}, WIDGET)
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["nothing"] is None  # nullable keeps null, no default
    out = apply_defaults({"spec": {"replicas": None}}, WIDGET)
    assert out["spec"]["replicas"] == 1  # null on non-nullable pruned, then defaulted
    assert apply_defaults({}, WIDGET) == {}
    nested = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "default": {}, "properties": {"b": {"type": "integer", "default": 3}}}
        },
    }
    assert apply_defaults({}, nested) == {"a": {"b": 3}}


def test_type_error_message_matches_kubernetes() -> None:
    assert errors({"spec": {"replicas": "x"}}) == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"color": "green"}, 'spec.color: Unsupported value: "green": supported values: "red", "blue"'),
        (
            {"replicas": -1},
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ),
        ({"name": "a"}, 'spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long'),
        ({"name": "abcdef"}, "spec.name: Too long: may not be more than 5 bytes"),
        ({"name": "AB"}, "spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"),
        ({"tags": ["a", "a"]}, 'spec.tags[1]: Duplicate value: "a"'),
        ({"tags": ["a", "b", "c", "d"]}, "spec.tags: Too many: 4: must have at most 3 items"),
        ({"ports": [{"name": "a"}, {"name": "a"}]}, 'spec.ports[1]: Duplicate value: {"name":"a"}'),
        ({"ports": [{"n": 1}]}, "spec.ports[0].name: Required value"),
        ({"ports": [{"name": "a", "n": 2**40}]}, "spec.ports[0].n in body must be of type int32"),
        ({"when": "yesterday"}, 'spec.when in body must be of type date-time: "yesterday"'),
        ({"labels": {"a": "1", "b": "2", "c": "3"}}, "spec.labels: Too many: 3: must have at most 2 items"),
        (
            {"labels": {"a": 1}},
            'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string',
        ),
        ({"port": 1.5}, "spec.port in body must be of type integer or string"),
        ({"ratio": 1}, "spec.ratio in body should be less than 1"),
        ({"template": {"kind": "Pod"}}, "spec.template.apiVersion: Required value"),
        (
            {"color": None},
            'spec.color: Invalid value: "null": spec.color in body must be of type string: "null"',
        ),
    ],
)
def test_value_validation_messages(spec: dict[str, Any], message: str) -> None:
    found = errors({"spec": spec})
    assert any(message in e for e in found), found


def test_valid_objects_pass() -> None:
    good = {
        "spec": {
            "replicas": 0,
            "color": "red",
            "port": "http",
            "name": "ab",
            "tags": ["a", "b"],
            "ports": [{"name": "a", "n": 1}, {"name": "b"}],
            "when": "2024-05-01T12:00:00Z",
            "nothing": None,
            "ratio": 0.5,
            "labels": {"x": "y"},
        }
    }
    assert errors(good) == []
    assert errors({"spec": {"port": 8080}}) == []


CEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not exceed maxReplicas",
                },
                {
                    "rule": "!has(self.mode) || self.mode.lowerAscii() == self.mode",
                    "messageExpression": "'mode must be lower case, got ' + self.mode",
                    "fieldPath": ".mode",
                },
                {"rule": "self.workers.all(w, w.size() > 1)", "reason": "FieldValueForbidden"},
                {"rule": "self.workers.exists(w, w.startsWith('w'))"},
            ],
            "properties": {
                "minReplicas": {"type": "integer"},
                "maxReplicas": {"type": "integer"},
                "mode": {"type": "string"},
                "workers": {"type": "array", "items": {"type": "string"}},
                "name": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}],
                },
            },
        }
    },
}


def test_cel_rules() -> None:
    ok = {"spec": {"minReplicas": 1, "maxReplicas": 2, "workers": ["w1"], "mode": "x"}}
    assert structural_errors(CEL_SCHEMA) == []
    assert errors(ok, CEL_SCHEMA) == []
    bad = {"spec": {"minReplicas": 3, "maxReplicas": 2, "workers": ["x"], "mode": "UP"}}
    found = validate(bad, CEL_SCHEMA)
    by_field = {(e.field, e.type, e.detail) for e in found}
    assert ("spec", "FieldValueInvalid", "minReplicas must not exceed maxReplicas") in by_field
    assert ("spec.mode", "FieldValueInvalid", "mode must be lower case, got UP") in by_field
    assert ("spec", "FieldValueForbidden", "failed rule: self.workers.all(w, w.size() > 1)") in by_field
    assert ("spec", "FieldValueInvalid", "failed rule: self.workers.exists(w, w.startsWith('w'))") in by_field
    assert 'spec: Invalid value: "object": minReplicas must not exceed maxReplicas' in errors(bad, CEL_SCHEMA)


def test_cel_transition_rule_needs_old_object() -> None:
    new = {"spec": {"minReplicas": 1, "maxReplicas": 1, "workers": ["w1"], "name": "b"}}
    assert errors(new, CEL_SCHEMA) == []  # create: transition rules skipped
    old = {"spec": {"name": "a"}}
    assert errors(new, CEL_SCHEMA, old) == ['spec.name: Invalid value: "b": name is immutable']
    assert errors(new, CEL_SCHEMA, {"spec": {"name": "b"}}) == []


def test_cel_evaluation_error_is_reported() -> None:
    found = errors({"spec": {"maxReplicas": 1, "workers": ["w1"]}}, CEL_SCHEMA)
    assert any("no such key" in e or "evaluation error" in e for e in found), found


def test_format_invalid_and_cause() -> None:
    one = [FieldError("FieldValueInvalid", "spec.a", "bad", 3)]
    assert (
        format_invalid("RayCluster.ray.io", "x", one)
        == 'RayCluster.ray.io "x" is invalid: spec.a: Invalid value: 3: bad'
    )
    two = [*one, FieldError("FieldValueRequired", "spec.b", "")]
    assert format_invalid("Widget.example.com", "w", two) == (
        'Widget.example.com "w" is invalid: [spec.a: Invalid value: 3: bad, spec.b: Required value]'
    )
    assert field_error_cause(two[1]) == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.b",
    }
