#!/usr/bin/env bash
# The images of the multi-node Swarm test (tests/e2e/test_swarm_multinode.py), built locally from
# debian:bookworm-slim (the stand-in `make images` builds where no registry answers): the Docker-in-Docker node
# (Debian's docker.io) and Portside's edge proxy (Debian's caddy) as portside-edge:local. Cached: each is rebuilt
# only when its files change (the image carries a hash of them as a label).
#
#   deploy/dind/build-image.sh [TAG]      (default: portside-dind:local)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TAG="${1:-portside-dind:local}"
SUM="$(cat "$HERE/Dockerfile" "$HERE/entrypoint.sh" | sha256sum | cut -c1-16)"

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    bash "$REPO/deploy/base-images/build.sh" debian:bookworm-slim
fi
if [ "$(docker image inspect -f '{{index .Config.Labels "org.portside.dind.files"}}' "$TAG" 2>/dev/null)" != "$SUM" ]; then
    echo "[dind-image] building $TAG ..."
    DOCKER_BUILDKIT=0 docker build --quiet --force-rm -t "$TAG" --label "org.portside.dind.files=$SUM" "$HERE" >/dev/null
    echo "[dind-image] $TAG: $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}')"
fi

# Portside's edge proxy image (services/runner/edge/), built here on the host engine where the layer cache keeps
# it: the test loads it into the first node under the name the runner looks for, so the runner pushes it instead
# of building it inside the node (apt in Docker-in-Docker: about 2 minutes per run).
EDGE_DIR="$REPO/services/runner/edge"
EDGE_SUM="$(cat "$EDGE_DIR/Dockerfile" "$EDGE_DIR/Caddyfile" | sha256sum | cut -c1-12)"
if [ "$(docker image inspect -f '{{index .Config.Labels "org.portside.edge.files"}}' portside-edge:local 2>/dev/null)" != "$EDGE_SUM" ]; then
    echo "[dind-image] building portside-edge:local ..."
    DOCKER_BUILDKIT=0 docker build --quiet --force-rm -t portside-edge:local --label "org.portside.edge.files=$EDGE_SUM" \
        "$EDGE_DIR" >/dev/null
fi
