#!/usr/bin/env bash
# Make sure Debian's docker-registry (the CNCF distribution registry, 2.8) is installed: the Swarm tests start it
# as a plain process on a loopback port (tests/e2e/swarm_support.py) for the builder to push to and the nodes to
# pull from. Nothing is started here and no service is enabled.
#
#   scripts/ensure-registry.sh      # quiet and fast when it is already there
set -euo pipefail

if [ -x /usr/bin/docker-registry ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing docker-registry from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
    # The package starts a registry on :5000 where an init system runs; the tests start their own.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
        systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
    exit 0
fi
echo "The Swarm tests need Debian's docker-registry at /usr/bin/docker-registry: run 'sudo apt-get install docker-registry'." >&2
exit 1
