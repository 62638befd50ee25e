#!/usr/bin/env bash
# Usage: scripts/with-s3.sh CMD [ARGS...]
#
# Runs CMD with a private S3 API (moto's server, PyPI `moto[server]`) on a free loopback port and
# exports APOGEE_TEST_S3_ENDPOINT=http://127.0.0.1:PORT for it. moto keeps everything in memory
# and accepts any access key; tests create their own buckets. It is installed with pip into a
# venv under ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-s3 and stopped when this script exits,
# whatever CMD did. Exit status is CMD's.
#
# Env: APOGEE_S3_DIR  venv location (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-s3)
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

log() { echo "with-s3: $*" >&2; }

VENV=${APOGEE_S3_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-s3}
if [ ! -x "$VENV/bin/moto_server" ]; then
  log "installing moto[server] into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]'
fi
MOTO_BIN=$VENV/bin/moto_server
[ -x "$MOTO_BIN" ] || {
  log "no moto_server in $VENV/bin"
  exit 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/apogee-s3.XXXXXX")
SERVER=
CHILD=

# shellcheck disable=SC2317  # called from a trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
# shellcheck disable=SC2317  # called from a trap
on_signal() {
  if [ -n "$CHILD" ]; then
    kill "-$1" "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  exit "$2"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# A random port in 20000-31999 (below Linux's ephemeral range) that nothing listens on.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

ready=0
for attempt in 1 2 3 4 5; do
  PORT=$(free_port)
  "$MOTO_BIN" -H 127.0.0.1 -p "$PORT" >"$TMP/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      ready=1
      break
    fi
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.1
  done
  [ "$ready" = 1 ] && break
  log "start on port $PORT failed (attempt $attempt)"
  tail -n 20 "$TMP/server.log" >&2 || true
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=
done
if [ "$ready" != 1 ]; then
  log "could not start moto_server"
  exit 1
fi

export APOGEE_TEST_S3_ENDPOINT="http://127.0.0.1:$PORT"
log "moto $("$VENV/bin/pip" show moto 2>/dev/null | awk '/^Version:/ {print $2}') ready: $APOGEE_TEST_S3_ENDPOINT"

(
  trap - INT QUIT
  exec "$@"
) <&0 &
CHILD=$!
rc=0
wait "$CHILD" || rc=$?
CHILD=
exit "$rc"
