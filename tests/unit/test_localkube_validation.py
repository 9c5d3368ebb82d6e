"""Pure validation of built-in kinds: kube's field paths and messages, decode (400) errors."""

from __future__ import annotations

from typing import Any

import pytest

from localkube import validation as v
from localkube import validation_kinds as vk


def _messages(causes: list[dict[str, str]]) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in causes]


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Always"}
    return {"metadata": {"name": "p"}, "spec": {**base, **spec}}


def test_names_follow_kube_rules_and_length_limits() -> None:
    assert v.name_causes("core/configmaps", {"name": "ok.name-1"}) == []
    long = "a" * 254
    assert _messages(v.name_causes("core/configmaps", {"name": long})) == [
        f'metadata.name: Invalid value: "{long}": must be no more than 253 characters'
    ]
    both = v.name_causes("core/pods", {"name": "A" * 254})
    assert len(both) == 2 and "lowercase RFC 1123 subdomain" in both[1]["message"]
    assert (
        "must be no more than 63 characters"
        in _messages(v.name_causes("core/namespaces", {"name": "a" * 64}))[0]
    )
    svc = _messages(v.name_causes("core/services", {"name": "1abc"}))
    assert svc == [f'metadata.name: Invalid value: "1abc": {v.DNS1035_MSG}']
    assert v.name_causes("rbac.authorization.k8s.io/clusterroles", {"name": "system:controller:x"}) == []
    assert _messages(v.name_causes("rbac.authorization.k8s.io/roles", {"name": "a/b"})) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"
    ]
    assert v.name_causes("core/pods", {})[0]["message"] == "Required value: name or generateName is required"


def test_label_message_is_kubes_including_its_double_space() -> None:
    assert (
        "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        in (v.LABEL_MSG)
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"restartPolicy": "Sometimes"},
            [
                'spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                '"Always", "OnFailure", "Never"'
            ],
        ),
        ({"containers": []}, ["spec.containers: Required value"]),
        (
            {"containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "i"}]},
            ['spec.containers[1].name: Duplicate value: "c"'],
        ),
        ({"containers": [{"name": "c"}]}, ["spec.containers[0].image: Required value"]),
        (
            {
                "containers": [
                    {"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "ICMP"}]}
                ]
            },
            [
                'spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
                '"SCTP", "TCP", "UDP"'
            ],
        ),
        (
            {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "name": "HTTP"}]}]},
            [
                'spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric '
                "characters (a-z, 0-9), and hyphens (-)",
                'spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain at least one '
                "letter (a-z)",
            ],
        ),
        (
            {"containers": [{"name": "c", "image": "i", "env": [{"value": "x"}]}]},
            ["spec.containers[0].env[0].name: Required value"],
        ),
        (
            {"initContainers": [{"name": "c", "image": "i", "imagePullPolicy": "Sometimes"}]},
            [
                'spec.initContainers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
                '"Always", "IfNotPresent", "Never"',
                'spec.containers[0].name: Duplicate value: "c"',
            ],
        ),
    ],
)
def test_pod_rules(spec: dict[str, Any], expected: list[str]) -> None:
    assert _messages(vk.causes("core/pods", _pod(**spec))) == expected


def test_service_rules() -> None:
    def svc(**spec: Any) -> dict[str, Any]:
        return {"spec": {"ports": [{"port": 80}], **spec}}

    assert vk.causes("core/services", svc(type="NodePort")) == []
    assert _messages(vk.causes("core/services", svc(type="Foo"))) == [
        'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
        '"NodePort"'
    ]
    two = svc(ports=[{"port": 80, "name": "a"}, {"port": 0}])
    assert _messages(vk.causes("core/services", two)) == [
        "spec.ports[1].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    ]
    assert _messages(vk.causes("core/services", {"spec": {}})) == ["spec.ports: Required value"]
    assert vk.causes("core/services", {"spec": {"clusterIP": "None"}}) == []


def test_configmap_and_secret_rules() -> None:
    assert _messages(vk.causes("core/configmaps", {"data": {"a b": "x"}}))[0].startswith(
        'data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters'
    )
    big = {"data": {"a": "x" * (v.MAX_CONFIG_BYTES - 1), "b": "yy"}}
    assert _messages(vk.causes("core/configmaps", big)) == [
        "[]: Too long: may not be more than 1048576 bytes"
    ]
    assert vk.causes("core/configmaps", {"data": {"a": "x" * v.MAX_CONFIG_BYTES}}) == []
    assert vk.causes("core/secrets", {"data": {"k": "eA=="}}) == []


def test_job_lease_ingress_rules() -> None:
    job = {"spec": {"parallelism": -1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    assert _messages(vk.causes("batch/jobs", job)) == [
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"
    ]
    assert _messages(vk.causes("coordination.k8s.io/leases", {"spec": {"leaseTransitions": -1}})) == [
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"
    ]
    ing = {"spec": {"rules": [{"host": "*.example.com", "http": {"paths": [{"path": "/x"}]}}]}}
    assert _messages(vk.causes("networking.k8s.io/ingresses", ing)) == [
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
    ]


@pytest.mark.parametrize(
    ("key", "kind", "obj", "message"),
    [
        (
            "core/pods",
            "Pod",
            {"spec": {"containers": [{"name": "c", "args": [1]}]}},
            'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go struct '
            "field Container.spec.containers.args of type string",
        ),
        (
            "core/pods",
            "Pod",
            {"spec": {"containers": {"name": "c"}}},
            'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal object into Go struct '
            "field PodSpec.spec.containers of type []v1.Container",
        ),
        (
            "core/services",
            "Service",
            {"spec": {"ports": [{"port": "80"}]}},
            'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string into Go '
            "struct field ServicePort.spec.ports.port of type int32",
        ),
        (
            "batch/jobs",
            "Job",
            {"spec": {"parallelism": 1.5}},
            'Job in version "v1" cannot be handled as a Job: json: cannot unmarshal number 1.5 into Go '
            "struct field JobSpec.spec.parallelism of type int32",
        ),
        (
            "core/secrets",
            "Secret",
            {"data": {"a": "abc$"}},
            'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3',
        ),
    ],
)
def test_ill_typed_fields_are_decode_errors(key: str, kind: str, obj: Any, message: str) -> None:
    version = "batch/v1" if key == "batch/jobs" else "v1"
    assert vk.check_decode(key, kind, version, obj) == message


def test_well_typed_objects_decode() -> None:
    pod = _pod(containers=[{"name": "c", "image": "i", "command": ["a"], "ports": [{"containerPort": 1}]}])
    assert vk.check_decode("core/pods", "Pod", "v1", pod) is None
    assert (
        vk.check_decode("core/configmaps", "ConfigMap", "v1", {"data": {"a": "b"}, "binaryData": None})
        is None
    )
    assert vk.check_decode("core/namespaces", "Namespace", "v1", {"spec": 5}) is None  # only metadata checked
    assert vk.check_decode("core/namespaces", "Namespace", "v1", {"metadata": {"labels": {"a": 1}}}) == (
        'Namespace in version "v1" cannot be handled as a Namespace: json: cannot unmarshal number into Go '
        "struct field ObjectMeta.metadata.labels of type string"
    )


def test_labels_and_annotations_as_kube_validates_them() -> None:
    ok = {"labels": {"app.kubernetes.io/name": "x", "e": ""}, "annotations": {"Example.com/B": "1"}}
    assert v.label_causes(ok) == []  # annotation keys are checked lower-cased
    assert _messages(v.label_causes({"annotations": {"/b": "1"}})) == [
        'metadata.annotations: Invalid value: "/b": prefix part must be non-empty'
    ]
    long = "v" * 64
    assert _messages(v.label_causes({"labels": {"k": long}})) == [
        f'metadata.labels: Invalid value: "{long}": must be no more than 63 characters'
    ]
    assert _messages(v.label_causes({"labels": {"bad key": "-x"}})) == [
        f'metadata.labels: Invalid value: "bad key": name part {v.QUALIFIED_NAME_MSG}',
        f'metadata.labels: Invalid value: "-x": {v.LABEL_VALUE_MSG}',
    ]
    assert _messages(v.label_causes({"labels": {"a/b/c": "x"}}))[0].startswith(
        'metadata.labels: Invalid value: "a/b/c": a qualified name must consist of'
    )
    big = {"annotations": {"k": "x" * v.MAX_ANNOTATION_BYTES}}
    assert _messages(v.label_causes(big)) == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]
