#!/usr/bin/env bash
# The Docker-in-Docker node image of the multi-node Swarm test (tests/e2e/test_swarm_multinode.py), built locally
# from debian:bookworm-slim (the stand-in `make images` builds where no registry answers) with Debian's docker.io.
# Cached: rebuilt only when deploy/dind/ changes (the image carries a hash of its files as a label).
#
#   deploy/dind/build-image.sh [TAG]      (default: portside-dind:local)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TAG="${1:-portside-dind:local}"
SUM="$(cat "$HERE/Dockerfile" "$HERE/entrypoint.sh" | sha256sum | cut -c1-16)"

if [ "$(docker image inspect -f '{{index .Config.Labels "org.portside.dind.files"}}' "$TAG" 2>/dev/null)" = "$SUM" ]; then
    exit 0
fi
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    bash "$REPO/deploy/base-images/build.sh" debian:bookworm-slim
fi
echo "[dind-image] building $TAG ..."
DOCKER_BUILDKIT=0 docker build --quiet --force-rm -t "$TAG" --label "org.portside.dind.files=$SUM" "$HERE" >/dev/null
echo "[dind-image] $TAG: $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}')"
