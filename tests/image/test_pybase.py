"""The decisions behind the slim submitter base image (`images/pybase.py`): which modules a traced run
imported, which stdlib files and shared libraries that means, and how bytes are bucketed in the report."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

IMAGES = Path(__file__).resolve().parents[2] / "images"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, IMAGES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pybase = _load("pybase")

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       248 |        248 | encodings.utf_8
import time:       542 |       1672 |             encodings.idna
ERROR --  something the program printed
import time:       410 |        410 |           _codecs_tw
MODULES builtins json json.decoder encodings.big5 submitter
"""


def test_parse_importtime_reads_importtime_lines_and_module_dumps() -> None:
    assert pybase.parse_importtime(IMPORTTIME) == {
        "encodings.utf_8", "encodings.idna", "_codecs_tw", "builtins", "json", "json.decoder",
        "encodings.big5", "submitter",
    }  # fmt: skip


def test_keep_modules_prunes_codec_probe_and_archive_fallbacks() -> None:
    keep = pybase.keep_modules(
        {"json", "encodings.big5", "encodings.utf_8", "_codecs_tw", "bz2", "_lzma", "ssl"}
    )
    assert {"json", "encodings.utf_8", "ssl"} <= keep
    assert not keep & {"encodings.big5", "_codecs_tw", "bz2", "_lzma"}
    assert keep >= pybase.ALWAYS_KEEP


def test_stdlib_files_maps_packages_modules_and_extensions_with_parents() -> None:
    available = {
        "json/__init__.py", "json/decoder.py", "os.py", "email/__init__.py", "email/mime/__init__.py",
        "email/mime/text.py", "lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", "ssl.py",
    }  # fmt: skip
    sources, extensions = pybase.stdlib_files(
        ["json.decoder", "email.mime.text", "_ssl", "ssl", "requests"], available
    )
    assert sources == [
        "email/__init__.py", "email/mime/__init__.py", "email/mime/text.py", "json/__init__.py",
        "json/decoder.py", "ssl.py",
    ]  # fmt: skip
    assert extensions == ["lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"]


def _elf_with_needed(names: list[str]) -> bytes:
    """A minimal ELF64 LE image: null section, .dynstr, .dynamic with DT_NEEDED entries."""
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    offsets = [1 + sum(len(n) + 1 for n in names[:i]) for i in range(len(names))]
    dynamic = b"".join(struct.pack("<qQ", 1, off) for off in offsets) + struct.pack("<qQ", 0, 0)
    header_size, shentsize = 64, 64
    str_off = header_size
    dyn_off = str_off + len(strtab)
    sh_off = dyn_off + len(dynamic)
    header = bytearray(header_size)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, sh_off)
    struct.pack_into("<HH", header, 0x3A, shentsize, 3)
    null = bytes(shentsize)
    sh_str = struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)
    sh_dyn = struct.pack("<IIQQQQIIQQ", 0, 6, 0, 0, dyn_off, len(dynamic), 1, 0, 8, 16)
    return bytes(header) + strtab + dynamic + null + sh_str + sh_dyn


def test_elf_needed_reads_dt_needed_in_order() -> None:
    assert pybase.elf_needed(_elf_with_needed(["libm.so.6", "libz.so.1", "libc.so.6"])) == [
        "libm.so.6", "libz.so.1", "libc.so.6",
    ]  # fmt: skip


def test_elf_needed_rejects_non_elf() -> None:
    with pytest.raises(ValueError, match="not a 64-bit little-endian ELF"):
        pybase.elf_needed(b"#!/bin/sh\n")


@pytest.mark.parametrize(
    ("path", "bucket"),
    [
        ("usr/bin/python3.11", "python interpreter (usr/bin)"),
        ("usr/lib/x86_64-linux-gnu/libcrypto.so.3", "openssl (libssl+libcrypto)"),
        ("lib/x86_64-linux-gnu/libc.so.6", "glibc (libc, libm, ld.so)"),
        ("usr/lib/python311.zip", "stdlib (python311.zip)"),
        (
            "usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
            "stdlib extension modules (lib-dynload)",
        ),
        ("opt/submitter/certifi/cacert.pem", "CA bundle (certifi cacert.pem)"),
        ("opt/submitter/site.zip", "submitter + requests, urllib3, ... (site.zip, certifi)"),
        ("etc/passwd", "other"),
    ],
)
def test_categorize(path: str, bucket: str) -> None:
    assert pybase.categorize(path) == bucket
