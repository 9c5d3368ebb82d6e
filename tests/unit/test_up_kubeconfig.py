"""The kubeconfig `rayside localkube serve` writes by default carries credentials (kubectl would otherwise
prompt for a username on HTTPS), while anonymous access stays allowed unless a token is required."""

from __future__ import annotations

from pathlib import Path

from localkube.cli import settings_from


def test_default_serve_has_a_kubeconfig_token_and_allows_anonymous(tmp_path: Path) -> None:
    settings, _ = settings_from(["--state-dir", str(tmp_path)])
    assert settings.token and settings.anonymous is True and settings.https


def test_a_required_token_disables_anonymous(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("s3cret\n")
    settings, _ = settings_from(["--state-dir", str(tmp_path), "--token-file", str(tmp_path / "t")])
    assert settings.token == "s3cret" and settings.anonymous is False
