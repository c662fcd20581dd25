#!/bin/sh
# The official postgres image's contract, for Portside's local stand-in built from Debian's packages:
# POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER (default postgres),
# POSTGRES_DB (default: the user), PGDATA (default /var/lib/postgresql/data), POSTGRES_INITDB_ARGS, and
# /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh run once on an empty data directory. The server runs as
# the `postgres` user, listens on every address and asks every TCP client for its password.
set -eu

PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
PATH="$PGBIN:$PATH"
export PATH
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "${1:-postgres}" != "postgres" ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi
[ "${1:-}" = "postgres" ] && shift

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
        echo "Error: Database is uninitialized and superuser password is not specified." >&2
        echo "       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)." >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    chown postgres "$pwfile"
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments
    as_postgres initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$method" \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf 'host all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
    # A server only on the socket while the init scripts run (health checks over TCP wait for the real one).
    # A generous wait: on a loaded host a timeout here would restart the container half-initialised.
    as_postgres pg_ctl -D "$PGDATA" -w -t 600 -o "-c listen_addresses=''" start >/dev/null
    if [ "$db" != postgres ]; then
        as_postgres psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres -q \
            -c "CREATE DATABASE \"$db\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; as_postgres psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" -q -f "$f" ;;
            *.sql.gz) echo "running $f"; gunzip -c "$f" | as_postgres psql -v ON_ERROR_STOP=1 --username "$user" --dbname "$db" -q ;;
            *) ;;
        esac
    done
    as_postgres pg_ctl -D "$PGDATA" -m fast -w -t 600 stop >/dev/null
    echo "PostgreSQL init process complete; ready for start up."
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -c listen_addresses='*' "$@"
