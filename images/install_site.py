"""Build stage of `Dockerfile.submitter`: install the submitter and its dependencies into one directory.

Runs inside the builder image with that image's Python 3.11 (no shell needed): pip-installs the `submitter`
extra of pyproject.toml (pinned by `images/submitter-constraints.txt`) into `--target`, copies the
`submitter` package next to it, drops what the submitter never loads (console scripts, pip metadata,
charset_normalizer's optional compiled speed-ups), compiles everything to bytecode, removes the sources and
zips all packages but certifi into `site.zip` (the image puts it first on PYTHONPATH).
pip reads PIP_NO_INDEX/PIP_FIND_LINKS from the environment, so an offline builder can supply local wheels.
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

DROP_IN_DIST_INFO = ("RECORD", "INSTALLER", "REQUESTED", "WHEEL", "direct_url.json", "entry_points.txt")


def requirements(pyproject: Path) -> list[str]:
    """The `submitter` extra of the project, e.g. ["requests>=2.31", ...]."""
    data = tomllib.loads(pyproject.read_text())
    reqs: list[str] = data["project"]["optional-dependencies"]["submitter"]
    return reqs


def prune(target: Path) -> None:
    """Remove files the submitter never loads at run time."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for info in target.glob("*.dist-info"):
        for name in DROP_IN_DIST_INFO:
            (info / name).unlink(missing_ok=True)
    # charset_normalizer ships mypyc-compiled copies of its pure-Python modules; the .py versions work alone.
    for so in [*target.glob("*__mypyc*.so"), *(target / "charset_normalizer").glob("**/*.so")]:
        so.unlink()
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache)
    for typed in target.rglob("py.typed"):
        typed.unlink()


def compile_and_strip_sources(target: Path) -> None:
    """Byte-compile to legacy `.pyc` beside each module (sourceless import), then delete the `.py` files."""
    ok = compileall.compile_dir(str(target), quiet=1, legacy=True, workers=0)
    if not ok:
        sys.exit("byte-compilation failed")
    for src in target.rglob("*.py"):
        src.unlink()


def zip_packages(target: Path, keep_as_files: tuple[str, ...] = ("certifi",)) -> None:
    """Move every package into `target/site.zip` (zipimport runs sourceless .pyc), except those that must stay
    files: certifi hands its CA bundle to OpenSSL by path (SSL_CERT_FILE, certifi.where())."""
    entries = sorted(
        p for p in target.iterdir() if p.name != "site.zip" and not p.name.startswith(keep_as_files)
    )
    with zipfile.ZipFile(target / "site.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for entry in entries:
            files = sorted(entry.rglob("*")) if entry.is_dir() else [entry]
            for f in files:
                if f.is_file():
                    zf.write(f, str(f.relative_to(target)))
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def main() -> None:
    p = argparse.ArgumentParser(description="Install the submitter and its dependencies into one directory.")
    p.add_argument("--src", type=Path, required=True, help="directory holding pyproject.toml and submitter/")
    p.add_argument("--constraints", type=Path, required=True)
    p.add_argument("--target", type=Path, required=True)
    args = p.parse_args()
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--no-compile",
        "--disable-pip-version-check",
    ]
    pip += ["--root-user-action=ignore"]
    pip += [
        "--target",
        str(args.target),
        "-c",
        str(args.constraints),
        *requirements(args.src / "pyproject.toml"),
    ]
    subprocess.run(pip, check=True)
    shutil.copytree(args.src / "submitter", args.target / "submitter")
    prune(args.target)
    compile_and_strip_sources(args.target)
    zip_packages(args.target)


if __name__ == "__main__":
    main()
