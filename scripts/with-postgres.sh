#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD [ARGS...]
#
# Runs CMD with a private, throwaway PostgreSQL 15 (Debian's packages) on a free loopback port and
# exports APOGEE_TEST_DATABASE_URL=postgres://apogee:apogee@127.0.0.1:PORT/apogee for it.
# The cluster lives in a fresh temp dir, runs as an unprivileged user (initdb refuses root), and is
# stopped and deleted when this script exits, whatever CMD did. Exit status is CMD's.
#
# Env: PG_BIN            PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#      APOGEE_PG_USER    OS user that runs the server when invoked as root (default apogee-test)
#      APOGEE_PG_KEEP=1  keep the temp dir (logs) after exit, for debugging
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_OS_USER=${APOGEE_PG_USER:-apogee-test}
DB_NAME=apogee
DB_USER=apogee
DB_PASS=apogee

log() { echo "with-postgres: $*" >&2; }

# Install the server if this machine lacks it (a fresh CI machine must provision itself).
if [ ! -x "$PG_BIN/initdb" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "$PG_BIN/initdb not found and not root: install Debian's postgresql-15 first"
    exit 1
  fi
  log "installing postgresql-15 with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
fi

# As root, run PostgreSQL as an unprivileged system user; otherwise as ourselves.
if [ "$(id -u)" -eq 0 ]; then
  if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    # `|| true`: a concurrent run may have created it meanwhile; `id` below is the real check.
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$PG_OS_USER" 2>/dev/null || true
    id -u "$PG_OS_USER" >/dev/null
  fi
  as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
else
  as_pg() { "$@"; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/apogee-pg.XXXXXX")
PGDATA=$TMP/data
STARTED=0
KEEP_TMP=${APOGEE_PG_KEEP:-0}
# shellcheck source=scripts/lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
# shellcheck disable=SC2317  # called from a trap
stop_server() {
  if [ "$STARTED" = 1 ]; then
    # Immediate mode: the data is thrown away, so no checkpoint is worth waiting for.
    (cd "$TMP" && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 20 stop >/dev/null 2>&1) ||
      log "pg_ctl stop failed"
  fi
}
harness_traps

printf '%s\n' "$DB_PASS" >"$TMP/pwfile"
if [ "$(id -u)" -eq 0 ]; then
  chown -R "$PG_OS_USER:" "$TMP"
fi

# cd into TMP: the server user may not be allowed into the caller's cwd (e.g. /root).
CALLER_PWD=$PWD
cd "$TMP"

# --no-sync and the fsync/full_page_writes settings below: a disposable test cluster needs no durability.
as_pg "$PG_BIN/initdb" -D "$PGDATA" -U "$DB_USER" --pwfile="$TMP/pwfile" -E UTF8 --no-locale \
  --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions >"$TMP/initdb.log" 2>&1 || {
  cat "$TMP/initdb.log" >&2
  exit 1
}

# A port found free can be taken before the server binds it: retry a few times.
for attempt in 1 2 3 4 5; do
  PORT=$(free_port)
  if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$TMP/server.log" -w -t 30 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$TMP \
     -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
     -c max_connections=300 -c shared_buffers=128MB" >/dev/null; then
    STARTED=1
    break
  fi
  log "start on port $PORT failed (attempt $attempt)"
  tail -n 20 "$TMP/server.log" >&2 || true
done
if [ "$STARTED" != 1 ]; then
  log "could not start PostgreSQL"
  exit 1
fi

as_pg "$PG_BIN/createdb" -h "$TMP" -p "$PORT" -U "$DB_USER" "$DB_NAME"

export APOGEE_TEST_DATABASE_URL="postgres://$DB_USER:$DB_PASS@127.0.0.1:$PORT/$DB_NAME"
log "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') ready: $APOGEE_TEST_DATABASE_URL"

# Run CMD from the caller's directory (we cd'ed into TMP above).
cd "$CALLER_PWD"
run_cmd "$@"
