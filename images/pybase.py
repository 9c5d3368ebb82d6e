"""Assemble the root filesystems of the local Python images for the submitter image (no registry needed).

Used by `images/build_submitter_image.sh`. Sub-commands:

- `builder`: a full Python 3.11 (Debian packages, extracted) plus pip and the submitter's wheels; the build
  stage of `Dockerfile.submitter` runs in it.
- `trace-modules`: turn `python -X importtime` logs of real submitter runs into the set of imported modules.
- `stdlib`: (run inside the builder) compile the traced stdlib modules into `python311.zip` and pick the
  extension modules they need from `lib-dynload`.
- `base`: the slim base: the interpreter, the shared libraries it and the kept extension modules load (found
  by reading their ELF dynamic sections), the stdlib zip, and a few files in /etc.
- `sizes`: a byte breakdown of a root filesystem by category.

Pure functions decide (`parse_importtime`, `elf_needed`, `stdlib_files`, `categorize`); `main` acts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

PY = "python3.11"
STDLIB = f"usr/lib/{PY}"
DYNLOAD = f"{STDLIB}/lib-dynload"
LIBDIR = "usr/lib/x86_64-linux-gnu"
LIBC_DIR = "lib/x86_64-linux-gnu"

# Always kept even if a traced run did not import them: error paths and codecs a user's data may pick.
ALWAYS_KEEP = frozenset(
    {
        "encodings", "encodings.aliases", "encodings.ascii", "encodings.latin_1", "encodings.utf_8",
        "encodings.utf_8_sig", "encodings.idna", "encodings.punycode", "encodings.cp1252",
        "encodings.raw_unicode_escape", "encodings.unicode_escape", "encodings.charmap",
        "stringprep", "traceback", "linecache", "tokenize", "token", "warnings", "site", "os",
    }
)  # fmt: skip

# Codecs kept from the `encodings` package; the rest are imported only by charset_normalizer's eager probe of
# every codec (`is_multi_byte_encoding`, guarded by `except ImportError`), which requests uses solely to guess
# the charset of a response that declares none.
KEEP_ENCODINGS = frozenset(
    {
        "aliases", "ascii", "latin_1", "utf_8", "utf_8_sig", "utf_16", "utf_16_le", "utf_16_be", "utf_32",
        "utf_32_le", "utf_32_be", "utf_7", "idna", "punycode", "cp1252", "cp437", "raw_unicode_escape",
        "unicode_escape", "charmap", "hex_codec", "base64_codec",
    }
)  # fmt: skip
# Imported, but only behind `except ImportError` fallbacks the submitter never needs: the CJK codec tables
# (charset_normalizer's probe, see above) and bz2/lzma (shutil/zipfile archive formats).
PRUNE = frozenset(
    {
        "_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp", "_codecs_kr", "_codecs_tw",
        "bz2", "_bz2", "lzma", "_lzma",
    }
)  # fmt: skip

ETC_FILES = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    ),
    "etc/group": "root:x:0:\nnonroot:x:65532:\n",
    "etc/nsswitch.conf": "hosts: files dns\n",
}


# -- pure functions -------------------------------------------------------------------------------------
def parse_importtime(text: str) -> set[str]:
    """Module names from a traced run's stderr: `python -X importtime` lines (`import time: self |
    cumulative | name`) and `MODULES a b c` lines (a dump of `sys.modules` at exit)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("MODULES "):
            names.update(line.split()[1:])
            continue
        if not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) != 3:
            continue
        name = parts[2].strip()
        if name and name != "imported package":
            names.add(name)
    return names


def keep_modules(traced: Iterable[str]) -> set[str]:
    """The stdlib modules the slim base keeps: the traced ones minus PRUNE and unneeded codecs, plus
    ALWAYS_KEEP."""
    keep = set(ALWAYS_KEEP)
    for name in traced:
        if name in PRUNE:
            continue
        if name.startswith("encodings.") and name.split(".", 1)[1] not in KEEP_ENCODINGS:
            continue
        keep.add(name)
    return keep


def with_parents(names: Iterable[str]) -> set[str]:
    """Every module plus each parent package (`a.b.c` -> `a`, `a.b`, `a.b.c`)."""
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def stdlib_files(names: Iterable[str], available: set[str]) -> tuple[list[str], list[str]]:
    """Map module names to stdlib files. `available` holds paths relative to the stdlib directory
    (`json/__init__.py`, `lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so`). Returns (pure-Python sources,
    extension modules); names that are not stdlib modules (third-party, built-ins) are skipped."""
    sources: list[str] = []
    extensions: list[str] = []
    for name in sorted(with_parents(names)):
        rel = name.replace(".", "/")
        ext = f"lib-dynload/{name}.cpython-311-x86_64-linux-gnu.so"
        if f"{rel}/__init__.py" in available:
            sources.append(f"{rel}/__init__.py")
        elif f"{rel}.py" in available:
            sources.append(f"{rel}.py")
        elif ext in available:
            extensions.append(ext)
    return sources, extensions


def elf_needed(data: bytes) -> list[str]:
    """DT_NEEDED entries of a 64-bit little-endian ELF file (read from its section headers)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    needed: list[str] = []
    for sh in sections:
        if sh[1] != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[sh[6]]
        str_off = strtab[4]
        for off in range(sh[4], sh[4] + sh[5], 16):
            tag, val = struct.unpack_from("<qQ", data, off)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\0", str_off + val)
                needed.append(data[str_off + val : end].decode())
    return needed


def categorize(rel: str) -> str:
    """The size-breakdown bucket of a file path relative to the root filesystem."""
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith("usr/bin/"):
        return "python interpreter (usr/bin)"
    if name.startswith(("libcrypto", "libssl")):
        return "openssl (libssl+libcrypto)"
    if name.startswith(("libc.", "libm.", "ld-linux")):
        return "glibc (libc, libm, ld.so)"
    if rel.startswith(f"{DYNLOAD}/"):
        return "stdlib extension modules (lib-dynload)"
    if rel.startswith("usr/lib/python3") and rel.endswith(".zip"):
        return "stdlib (python311.zip)"
    if rel.startswith("opt/submitter/certifi/") and rel.endswith(".pem"):
        return "CA bundle (certifi cacert.pem)"
    if rel.startswith("opt/submitter/"):
        return "submitter + requests, urllib3, ... (site.zip, certifi)"
    if name.startswith(("libz.", "libexpat")):
        return "zlib + expat"
    return "other"


# -- actions --------------------------------------------------------------------------------------------
def extract_debs(debs: Iterable[Path], root: Path) -> None:
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


def write_etc(root: Path) -> None:
    for rel, text in ETC_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    (root / "home/nonroot").mkdir(parents=True, exist_ok=True)
    os.chown(root / "home/nonroot", 65532, 65532)


def cmd_builder(args: argparse.Namespace) -> None:
    root: Path = args.out
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    extract_debs(sorted(args.debs.glob("*.deb")), root)
    (root / "usr/bin/python3").symlink_to(PY)
    wheels = root / "wheels"
    wheels.mkdir()
    for whl in args.wheels.glob("*.whl"):
        shutil.copy2(whl, wheels / whl.name)
    pip_whl = next(args.wheels.glob("pip-*.whl"))
    dist = root / "usr/local/lib/python3.11/dist-packages"
    dist.mkdir(parents=True)
    with zipfile.ZipFile(pip_whl) as zf:
        zf.extractall(dist)
    write_etc(root)


def cmd_trace_modules(args: argparse.Namespace) -> None:
    names: set[str] = set()
    for log in args.logs:
        names |= parse_importtime(log.read_text(errors="replace"))
    args.out.write_text("".join(f"{n}\n" for n in sorted(names)))
    print(f"{len(names)} modules imported across {len(args.logs)} traced runs")


def cmd_stdlib(args: argparse.Namespace) -> None:
    """Runs inside the builder image (its own python3.11 compiles the bytecode)."""
    import py_compile

    src_root = Path(sys.prefix) / "lib" / PY
    available = {str(p.relative_to(src_root)) for p in src_root.rglob("*") if p.is_file()}
    names = keep_modules(args.modules.read_text().split())
    sources, extensions = stdlib_files(names, available)
    out: Path = args.out
    (out / "lib-dynload").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out / "python311.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in sources:
            pyc = py_compile.compile(
                str(src_root / rel),
                optimize=2,  # no docstrings/asserts: CPython's stdlib supports -OO
                cfile=str(out / "tmp.pyc"),
                dfile=f"/usr/lib/{PY}/{rel}",
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            zf.write(str(pyc), rel + "c")
    (out / "tmp.pyc").unlink(missing_ok=True)
    for rel in extensions:
        shutil.copy2(src_root / rel, out / rel)
    print(f"stdlib: {len(sources)} modules zipped, {len(extensions)} extension modules kept")


def copy_lib(full: Path, root: Path, soname: str) -> Path:
    """Copy a shared library (following its soname symlink) from the full tree into the slim root."""
    for d in (LIBC_DIR, LIBDIR):
        link = full / d / soname
        if link.exists():
            real = link.resolve()
            if not real.is_relative_to(full):  # absolute symlink inside the extracted tree
                real = full / os.readlink(link).lstrip("/")
            dest = root / d / soname
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(real, dest)
            return dest
    raise FileNotFoundError(f"shared library {soname} not found in {full}")


def cmd_base(args: argparse.Namespace) -> None:
    full: Path = args.full
    root: Path = args.out
    shutil.rmtree(root, ignore_errors=True)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy2(full / "usr/bin" / PY, root / "usr/bin" / PY)
    (root / "usr/bin/python3").symlink_to(PY)
    (root / "lib64").mkdir()
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to(f"/{LIBC_DIR}/ld-linux-x86-64.so.2")
    copy_lib(full, root, "ld-linux-x86-64.so.2")
    shutil.copytree(args.stdlib / "lib-dynload", root / DYNLOAD)
    shutil.copy2(args.stdlib / "python311.zip", root / "usr/lib/python311.zip")
    # The stdlib directory must exist: getpath looks for lib/python3.11 next to the zip.
    todo = [root / "usr/bin" / PY, *sorted((root / DYNLOAD).glob("*.so"))]
    seen: set[str] = set()
    while todo:
        for soname in elf_needed(todo.pop().read_bytes()):
            if soname not in seen:
                seen.add(soname)
                todo.append(copy_lib(full, root, soname))
    write_etc(root)
    print("base libraries:", " ".join(sorted(seen)))


def cmd_sizes(args: argparse.Namespace) -> None:
    root: Path = args.root
    buckets: dict[str, int] = {}
    for path in root.rglob("*"):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            key = categorize(str(path.relative_to(root)))
            buckets[key] = buckets.get(key, 0) + st.st_size
    if args.json:
        print(json.dumps(buckets, sort_keys=True))
        return
    total = sum(buckets.values())
    for key, size in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"  {size / 1e6:7.2f} MB  {key}")
    print(f"  {total / 1e6:7.2f} MB  total (file bytes)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("builder")
    b.add_argument("--debs", type=Path, required=True)
    b.add_argument("--wheels", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("trace-modules")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("logs", type=Path, nargs="+")
    s = sub.add_parser("stdlib")
    s.add_argument("--modules", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    a = sub.add_parser("base")
    a.add_argument("--full", type=Path, required=True)
    a.add_argument("--stdlib", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    z = sub.add_parser("sizes")
    z.add_argument("root", type=Path)
    z.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    handlers = {
        "builder": cmd_builder,
        "trace-modules": cmd_trace_modules,
        "stdlib": cmd_stdlib,
        "base": cmd_base,
        "sizes": cmd_sizes,
    }
    handlers[args.cmd](args)


if __name__ == "__main__":
    main()
