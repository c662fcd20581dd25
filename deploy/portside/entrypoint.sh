#!/bin/bash
# Portside's image entrypoint: the first argument picks what this container runs.
#
#   setup                       prepare PORTSIDE_HOME (owned by portside) and generate the NATS and PostgreSQL
#                               passwords into /secrets once (kept in a volume; NATS_PASSWORD/POSTGRES_PASSWORD
#                               from the environment win)
#   nats                        nats-server with JetStream (store in /data/nats), user `portside`
#   postgres                    PostgreSQL 16 (data in /data/postgres), database and user `portside`
#   migrate                     bring the schema up to date (Alembic), then exit
#   api | logstream | detector | builder | runner
#                               the Portside service
#   proxy                       Caddy in front of the API and logstream replicas (deploy/portside/Caddyfile)
#   health <what>               the container's health check (see healthcheck.py)
#
# Started as root, it only makes PORTSIDE_HOME writable and finds the Docker socket's group, then runs everything
# as the unprivileged user `portside` with that group added (so the socket works whatever its gid on the host).
set -euo pipefail

cmd="${1:-api}"
shift || true
SECRETS=/secrets

say() { echo "[portside-entrypoint] $*" >&2; }

drop_root() {
    local groups=portside
    if [ -S /var/run/docker.sock ]; then
        groups="$groups,$(stat -c %g /var/run/docker.sock)"
    fi
    export HOME=/home/portside USER=portside
    exec setpriv --reuid=portside --regid=portside --groups="$groups" --inh-caps=-all -- "$0" "$cmd" "$@"
}

secret() {
    # secret NAME: the password named NAME, from the environment or the secrets volume.
    local file="$SECRETS/$1"
    if [ ! -s "$file" ]; then
        say "no $file yet: the \`setup\` service writes it (depends_on in deploy/compose.yaml)"
        exit 1
    fi
    cat "$file"
}

connection_urls() {
    # External servers: set PORTSIDE_NATS_URL / PORTSIDE_DATABASE_URL and nothing here is used.
    if [ -z "${PORTSIDE_NATS_URL:-}" ]; then
        PORTSIDE_NATS_URL="nats://portside:${NATS_PASSWORD:-$(secret nats_password)}@${NATS_ADDRESS:-nats:4222}"
        export PORTSIDE_NATS_URL
    fi
    if [ -z "${PORTSIDE_DATABASE_URL:-}" ]; then
        PORTSIDE_DATABASE_URL="postgresql://portside:${POSTGRES_PASSWORD:-$(secret postgres_password)}@${POSTGRES_ADDRESS:-postgres:5432}/portside"
        export PORTSIDE_DATABASE_URL
    fi
}

if [ "$cmd" = health ]; then
    if [ "${1:-}" = worker ]; then
        # Without starting Python (cheap on a busy machine): an ESTABLISHED (01) TCP connection to NATS's port.
        url="${PORTSIDE_NATS_URL:-nats://${NATS_ADDRESS:-nats:4222}}"
        port="${url##*:}"
        port="${port%%/*}"
        case "$port" in '' | *[!0-9]*) port=4222 ;; esac
        exec awk -v want="$(printf ':%04X' "$port")" \
            'FNR > 1 && $4 == "01" && substr($3, length($3) - 4) == want { found = 1 } END { exit !found }' \
            /proc/net/tcp /proc/net/tcp6
    fi
    exec python /usr/local/lib/portside/healthcheck.py "$@"
fi

if [ "$(id -u)" = 0 ]; then
    if [ "$cmd" = setup ]; then
        # A bind-mounted host directory: the runner's `docker compose` hands these very paths to the engine,
        # so it must be the same absolute path on the host and in every container.
        mkdir -p "$PORTSIDE_HOME/repos"
        chown portside:portside "$PORTSIDE_HOME" "$PORTSIDE_HOME/repos"
        chmod 750 "$PORTSIDE_HOME"
    fi
    drop_root "$@"
fi

case "$cmd" in
    setup)
        umask 077
        for name in nats_password postgres_password; do
            if [ ! -s "$SECRETS/$name" ]; then
                python -c 'import secrets; print(secrets.token_urlsafe(32))' >"$SECRETS/$name.part"
                mv "$SECRETS/$name.part" "$SECRETS/$name"
                say "generated $SECRETS/$name"
            fi
        done
        touch "$PORTSIDE_HOME/repos/.writable" && rm "$PORTSIDE_HOME/repos/.writable"
        say "PORTSIDE_HOME $PORTSIDE_HOME is ready"
        ;;
    nats)
        password="${NATS_PASSWORD:-$(secret nats_password)}"
        rm -f /tmp/nats.*.conf  # an earlier start's (a restarted container keeps /tmp)
        conf="$(mktemp /tmp/nats.XXXXXX.conf)"
        chmod 600 "$conf"
        cat >"$conf" <<EOF
port: 4222
http_port: 8222
max_payload: 8MB
jetstream { store_dir: "/data/nats" }
authorization { user: portside, password: "$password" }
EOF
        exec nats-server -c "$conf" "$@"
        ;;
    postgres)
        PGDATA=/data/postgres/pgdata
        if [ ! -s "$PGDATA/PG_VERSION" ]; then
            pwfile="$(mktemp)"
            printf '%s\n' "${POSTGRES_PASSWORD:-$(secret postgres_password)}" >"$pwfile"
            initdb -D "$PGDATA" -U portside --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
                -E UTF8 --locale=C >/dev/null
            rm -f "$pwfile"
            {
                echo "listen_addresses = '*'"
                echo "unix_socket_directories = '/tmp'"
            } >>"$PGDATA/postgresql.conf"
            echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
            echo "CREATE DATABASE portside;" | postgres --single -D "$PGDATA" postgres >/dev/null
            say "initialised a new database in $PGDATA"
        fi
        exec postgres -D "$PGDATA" "$@"
        ;;
    migrate)
        connection_urls
        exec python -c 'import os; from shared.migrations import upgrade; upgrade(os.environ["PORTSIDE_DATABASE_URL"]); print("schema up to date")'
        ;;
    proxy)
        export XDG_DATA_HOME=/tmp/caddy XDG_CONFIG_HOME=/tmp/caddy
        exec caddy run --adapter caddyfile --config /usr/local/lib/portside/Caddyfile "$@"
        ;;
    api | logstream | detector | builder | runner)
        connection_urls
        exec python -m "services.$cmd.main" "$@"
        ;;
    *)
        say "unknown command \`$cmd\`; use setup, nats, postgres, migrate, api, logstream, detector, builder, runner, proxy or health"
        exit 2
        ;;
esac
