#!/usr/bin/env bash
# One command: build the submitter image locally (images/build_submitter_image.sh: Debian packages -> slim
# Python base -> Dockerfile.submitter, sizes printed), then run the image's ENTRYPOINT as its USER with
# `buildah run --isolation chroot --network host`: `--help`, and a real submission to a token-auth Ray head
# started with tests/support/rayhead.py (log tailing, final status, re-run with the same id).
# Exit status: 0 when the build and every check pass, non-zero otherwise. Needs root (buildah, vfs storage).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${RAYSIDE_IMAGE_WORKDIR:-/var/tmp/rayside-images}
PYTHON=${PYTHON:-python3}
STORAGE="--root $WORK/storage --runroot $WORK/runroot --storage-driver vfs"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
bash "$REPO/images/build_submitter_image.sh" | tee "$log"
image=$(tail -n 1 "$log")

printf '\n== checking %s (runs inside the image)\n' "$image"
for attempt in 1 2 3; do # exit 75: the Ray head died (machine overloaded), not the image: retry
    rc=0
    "$PYTHON" "$REPO/images/image_check.py" --storage "$STORAGE" --secrets-dir "$WORK/secrets" check "$image" ||
        rc=$?
    [ "$rc" = 75 ] && [ "$attempt" != 3 ] && { echo "retrying the check with a new Ray head"; continue; }
    break
done
[ "$rc" = 0 ] || { echo "FAIL: checks inside $image failed (exit $rc)" >&2; exit "$rc"; }
printf '\nPASS: %s builds, runs --help and a real submission\n' "$image"
