#!/usr/bin/env bash
# Build Portside's own image (deploy/Dockerfile) locally; `make images` runs it after the base images.
#
#   deploy/portside/build-image.sh [TAG]      (default: $PORTSIDE_IMAGE or portside:local)
#
# It derives from `python:3.11-slim`: the real one where a registry answers, otherwise the local stand-in
# deploy/base-images/build.sh makes. The classic builder is used because the engine may have no BuildKit
# (buildx); the layer cache makes a rebuild after a source change take seconds.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAG="${1:-${PORTSIDE_IMAGE:-portside:local}}"

if ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
    bash "$REPO/deploy/base-images/build.sh" python:3.11-slim
fi
echo "[portside-image] building $TAG from $REPO/deploy/Dockerfile ..."
DOCKER_BUILDKIT=0 docker build --quiet --force-rm -f "$REPO/deploy/Dockerfile" -t "$TAG" \
    --label org.opencontainers.image.source=portside \
    --label "org.opencontainers.image.revision=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$REPO" >/dev/null
echo "[portside-image] $TAG: $(docker image inspect -f '{{.Id}} {{.Size}}' "$TAG" | awk '{printf "%s, %.0f MB", substr($1, 8, 12), $2 / 1e6}')"
