#!/usr/bin/env bash
# Make sure Debian's caddy is installed: Portside starts it as its reverse proxy (domains, HTTPS, zero-downtime
# switches) and configures it only through its admin API. The package's own systemd service is not used.
#
#   scripts/ensure-caddy.sh      # quiet and fast when caddy is already there
set -euo pipefail

if command -v caddy >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing caddy from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy >/dev/null
    # The package starts its own caddy on :80 under systemd; Portside runs its own, so that one must not hold 80.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now caddy >/dev/null 2>&1 || true
    fi
    exit 0
fi
echo "Portside's proxy needs caddy: run 'sudo apt-get install caddy', or set PORTSIDE_PROXY_ENABLED=false." >&2
exit 1
