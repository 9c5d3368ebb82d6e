#!/usr/bin/env bash
# Build the submitter image (Dockerfile.submitter) with buildah, without any container registry:
#   1. download Debian bookworm packages (apt-get download) and the pinned wheels (pip download);
#   2. builder image  = full python3.11 + libssl + pip + wheels, extracted from those packages;
#   3. build stage of Dockerfile.submitter on the builder (installs + byte-compiles /opt/submitter);
#   4. trace: run the submitter from that stage under `python -X importtime` against a real token-auth
#      Ray head and an https stub, recording every stdlib module it imports;
#   5. slim base      = python3.11 + the shared libraries it needs + python311.zip of the traced modules;
#   6. the final image: Dockerfile.submitter with BASE_IMAGE=slim base;
#   7. print the image size (uncompressed layer tar and gzip -9) and a breakdown by file category.
# Needs root, buildah, dpkg-deb, apt-get, openssl and the project's Python (requests, psutil, ray) for the Ray
# head. Work files and buildah's vfs storage live in $RAYSIDE_IMAGE_WORKDIR (default /var/tmp/rayside-images).
# Prints the final image name on the last line. Exit status non-zero on any failure.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${RAYSIDE_IMAGE_WORKDIR:-/var/tmp/rayside-images}
PYTHON=${PYTHON:-python3}
TAG=${RAYSIDE_IMAGE_TAG:-dev}
BUILDER_IMAGE=localhost/rayside/python-builder:3.11
BASE_IMAGE=localhost/rayside/python-submitter-base:3.11
BUILD_STAGE_IMAGE=localhost/rayside/submitter-build:$TAG
FINAL_IMAGE=localhost/rayside/submitter:$TAG
STORAGE="--root $WORK/storage --runroot $WORK/runroot --storage-driver vfs"
# Debian packages: the interpreter, its stdlib, the C libraries python3.11 and the kept extension modules
# load (libssl/libcrypto for https), plus what pip needs in the builder only (libffi, bz2, lzma, uuid).
DEBS="libc6 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libssl3 zlib1g libexpat1
      libffi8 libbz2-1.0 liblzma5 libuuid1"

say() { printf '\n== %s\n' "$*"; }
bh() { # shellcheck disable=SC2086
    buildah $STORAGE "$@"; }

ensure_tools() {
    local missing=() pkgs=() t
    for t in buildah:buildah dpkg-deb:dpkg apt-get:apt openssl:openssl gzip:gzip; do
        command -v "${t%%:*}" >/dev/null 2>&1 || { missing+=("${t%%:*}"); pkgs+=("${t#*:}"); }
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing missing tools: ${pkgs[*]}"
            apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null
        else
            echo "missing tools: ${missing[*]} (Debian packages: ${pkgs[*]}); install them as root" >&2
            exit 1
        fi
    fi
    [ "$(id -u)" = 0 ] || { echo "buildah with vfs storage and chroot isolation needs root here" >&2; exit 1; }
    "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' ||
        { echo "$PYTHON must be Python 3.11 (the image's Python)" >&2; exit 1; }
    "$PYTHON" -c 'import psutil, requests' ||
        { echo "$PYTHON lacks the project's dev dependencies: pip install -e '.[dev]'" >&2; exit 1; }
}

fetch_packages() {
    mkdir -p "$WORK/debs" "$WORK/wheels"
    if ! ls "$WORK"/debs/python3.11-minimal_*.deb >/dev/null 2>&1; then
        say "downloading Debian packages"
        # shellcheck disable=SC2086
        (cd "$WORK/debs" && { apt-get download $DEBS 2>/dev/null || { apt-get update -qq && apt-get download $DEBS; }; })
    fi
    if ! ls "$WORK"/wheels/requests-*.whl >/dev/null 2>&1; then
        say "downloading wheels"
        "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
            --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d "$WORK/wheels" \
            -r <(grep -v '^#' "$REPO/images/submitter-constraints.txt") pip
    fi
}

commit_rootfs() { # commit_rootfs DIR IMAGE [buildah config flags...]
    local dir=$1 image=$2 ctr mnt
    shift 2
    ctr=$(bh from scratch)
    mnt=$(bh mount "$ctr")
    cp -a "$dir"/. "$mnt"/
    bh umount "$ctr" >/dev/null
    if [ $# -gt 0 ]; then bh config "$@" "$ctr"; fi
    bh commit -q --rm "$ctr" "$image" >/dev/null
}

stage_context() { # only what Dockerfile.submitter copies: no large or private files reach buildah
    rm -rf "$WORK/context"
    mkdir -p "$WORK/context/images"
    cp "$REPO/Dockerfile.submitter" "$REPO/pyproject.toml" "$WORK/context/"
    cp -r "$REPO/submitter" "$WORK/context/submitter"
    find "$WORK/context/submitter" -name __pycache__ -prune -exec rm -rf {} +
    cp "$REPO/images/install_site.py" "$REPO/images/submitter-constraints.txt" "$WORK/context/images/"
}

build_base() {
    local ctr
    say "tracing the submitter's imports (real Ray head, https stub)"
    rm -rf "$WORK/trace"
    local rc=0
    for attempt in 1 2 3; do # exit 75: the Ray head died (machine overloaded), not the image: retry
        rc=0
        "$PYTHON" "$REPO/images/image_check.py" --storage "$STORAGE" --secrets-dir "$WORK/secrets" \
            trace "$BUILD_STAGE_IMAGE" "$WORK/trace" || rc=$?
        [ "$rc" = 75 ] && [ "$attempt" != 3 ] && { echo "retrying the trace with a new Ray head"; continue; }
        [ "$rc" = 0 ] || exit "$rc"
        break
    done
    "$PYTHON" "$REPO/images/pybase.py" trace-modules --out "$WORK/trace/modules.txt" "$WORK"/trace/*.log
    say "compiling the traced stdlib into python311.zip (with the image's own python3.11)"
    rm -rf "$WORK/stdlib"
    mkdir -p "$WORK/stdlib"
    ctr=$(bh from --pull-never "$BUILDER_IMAGE")
    bh run --isolation chroot --network host -v "$REPO/images:/images:ro" -v "$WORK/trace:/trace:ro" \
        -v "$WORK/stdlib:/out" "$ctr" -- /usr/bin/python3.11 /images/pybase.py stdlib \
        --modules /trace/modules.txt --out /out || { bh rm "$ctr" >/dev/null; exit 1; }
    bh rm "$ctr" >/dev/null
    say "assembling the slim base"
    "$PYTHON" "$REPO/images/pybase.py" base --full "$WORK/rootfs-builder" --stdlib "$WORK/stdlib" \
        --out "$WORK/rootfs-base"
    bh rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
    commit_rootfs "$WORK/rootfs-base" "$BASE_IMAGE" --user 65532:65532 --env PATH=/usr/bin
}

report_sizes() {
    local dir="$WORK/pushed" ctr mnt
    say "image size: $FINAL_IMAGE"
    rm -rf "$dir"
    bh push -q --disable-compression "$FINAL_IMAGE" "dir:$dir" >/dev/null
    "$PYTHON" - "$dir" <<'EOF'
import gzip, json, sys
from pathlib import Path
d = Path(sys.argv[1])
manifest = json.loads((d / "manifest.json").read_text())
raw = gz = 0
for layer in manifest["layers"]:
    blob = (d / layer["digest"].split(":", 1)[1]).read_bytes()
    size, packed = len(blob), len(gzip.compress(blob, 9, mtime=0))
    raw, gz = raw + size, gz + packed
    print(f"  layer {layer['digest'][7:19]}: {size / 1e6:6.2f} MB tar, {packed / 1e6:6.2f} MB gzip -9")
print(f"  IMAGE TOTAL: {raw / 1e6:.2f} MB uncompressed (layer tars), {gz / 1e6:.2f} MB compressed (gzip -9)")
print(f"               {raw / 2**20:.2f} MiB uncompressed, {gz / 2**20:.2f} MiB compressed")
EOF
    say "file bytes by category"
    ctr=$(bh from --pull-never "$FINAL_IMAGE")
    mnt=$(bh mount "$ctr")
    "$PYTHON" "$REPO/images/pybase.py" sizes "$mnt" || true
    bh umount "$ctr" >/dev/null
    bh rm "$ctr" >/dev/null
}

main() {
    ensure_tools
    mkdir -p "$WORK"
    fetch_packages
    say "builder image from Debian packages"
    "$PYTHON" "$REPO/images/pybase.py" builder --debs "$WORK/debs" --wheels "$WORK/wheels" \
        --out "$WORK/rootfs-builder"
    bh rmi -f "$BUILDER_IMAGE" >/dev/null 2>&1 || true
    commit_rootfs "$WORK/rootfs-builder" "$BUILDER_IMAGE" --env PIP_NO_INDEX=1 --env PIP_FIND_LINKS=/wheels \
        --env PATH=/usr/local/bin:/usr/bin:/bin
    stage_context
    say "build stage of Dockerfile.submitter (on the builder)"
    bh bud -q --isolation chroot --pull-never --target build --build-arg "BUILDER_IMAGE=$BUILDER_IMAGE" \
        -f "$WORK/context/Dockerfile.submitter" -t "$BUILD_STAGE_IMAGE" "$WORK/context" >/dev/null
    build_base
    say "final image: Dockerfile.submitter with BASE_IMAGE=$BASE_IMAGE"
    bh bud -q --isolation chroot --pull-never --build-arg "BUILDER_IMAGE=$BUILDER_IMAGE" \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$WORK/context/Dockerfile.submitter" -t "$FINAL_IMAGE" \
        "$WORK/context" >/dev/null
    bh rmi --prune >/dev/null 2>&1 || true # dangling images of earlier builds, in our own storage only
    report_sizes
    echo "$FINAL_IMAGE"
}

main "$@"
