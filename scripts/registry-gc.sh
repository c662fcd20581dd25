#!/usr/bin/env bash
# Free the disk of the registry Portside pushes to on Swarm (PORTSIDE_REGISTRY). Portside deletes tags there itself
# (a deleted deployment: all of its tags; a redeploy and the builder's janitor: all but the newest
# PORTSIDE_KEEP_IMAGES and those running or kept for rollback), but a registry frees the layers only when its
# garbage collector runs. Run this on the registry's machine, with the config the registry serves from, at a quiet
# hour (cron): the collector must not run while a build pushes (the distribution registry's own advice is to
# stop it or put it in read-only mode meanwhile).
#
#   scripts/registry-gc.sh /etc/docker/registry/config.yml        # or: make registry-gc REGISTRY_CONFIG=...
#   0 4 * * * root /opt/portside/scripts/registry-gc.sh /etc/docker/registry/config.yml
#
# --delete-untagged also removes manifests no tag points at any more (a `latest` that was pushed again).
set -euo pipefail

CONFIG="${1:-/etc/docker/registry/config.yml}"
BIN="${DOCKER_REGISTRY_BIN:-/usr/bin/docker-registry}"
if [ ! -x "$BIN" ]; then
    echo "No docker-registry at $BIN: run this on the registry's machine (scripts/ensure-registry.sh installs it)." >&2
    exit 1
fi
if [ ! -r "$CONFIG" ]; then
    echo "No registry config at $CONFIG: pass the file the registry serves from." >&2
    exit 1
fi
exec "$BIN" garbage-collect --delete-untagged "$CONFIG"
