"""`rayside up`'s document checks and apply order (pure: no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayside.up.documents import DocumentError, load_files, parse_text

JOB = """apiVersion: ray.io/v1
kind: RayJob
metadata: {name: j}
spec: {entrypoint: "python -c 'print(1)'"}
"""
CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: code}\ndata: {a: b}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "f.yaml: not YAML (line 1)"),
        ("- 1\n", "f.yaml#0: expected a mapping"),
        ("apiVersion: v1\nkind: Foo\nmetadata: {name: x}\n", "f.yaml#0: kind 'Foo' (apiVersion 'v1') is not"),
        ("kind: RayJob\nmetadata: {name: x}\n", "f.yaml#0: field apiVersion is required"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "f.yaml#0: field metadata.name is required"),
        (
            CONFIG + "---\n" + JOB.replace("entrypoint:", "entrypoint: [1], x:"),
            "f.yaml#1: field spec.entrypoint",
        ),
        ("", "f.yaml: no Kubernetes objects"),
    ],
)
def test_problems_name_file_document_and_field(text: str, message: str) -> None:
    with pytest.raises(DocumentError) as err:
        parse_text("f.yaml", text)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_config_maps_are_applied_before_ray_objects_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(JOB)
    (tmp_path / "b.yaml").write_text(CONFIG + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n")
    docs = load_files([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert [(d.kind, d.source) for d in docs] == [
        ("Namespace", f"{tmp_path}/b.yaml#1"),
        ("ConfigMap", f"{tmp_path}/b.yaml#0"),
        ("RayJob", f"{tmp_path}/a.yaml#0"),
    ]


def test_duplicates_and_unreadable_files_are_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(JOB + "---\n" + JOB)
    with pytest.raises(DocumentError, match=r"a.yaml#1: RayJob default/j also in .*a.yaml#0"):
        load_files([str(tmp_path / "a.yaml")])
    with pytest.raises(DocumentError, match=r"missing\.yaml: cannot read"):
        load_files([str(tmp_path / "missing.yaml")])


def test_examples_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "examples"
    docs = load_files([str(p) for p in sorted(root.glob("*.yaml"))])
    assert {d.kind for d in docs} >= {"RayJob"}
