#!/usr/bin/env bash
# Usage: scripts/with-synapse.sh CMD [ARGS...]
#
# Runs CMD beside a private Synapse (PyPI matrix-synapse, in a cached venv) federating on
# loopback, and exports for the tests:
#   APOGEE_TEST_SYNAPSE_URL   http://127.0.0.1:PORT  (client and federation APIs, plain HTTP)
#   APOGEE_TEST_SYNAPSE_NAME  its server name, synapse.test (reach it with
#                             --federation-resolve synapse.test=$APOGEE_TEST_SYNAPSE_URL)
#   APOGEE_TEST_SYNAPSE_USER / _PASSWORD  a registered user (alice)
#   APOGEE_TEST_SYNAPSE_CTL   a command for outage tests, working on *private* Synapses (so
#                             stopping one never disturbs the tests sharing the one above):
#                             `$APOGEE_TEST_SYNAPSE_CTL new` starts one (same configuration,
#                             server name synapse.test, user alice registered) and prints
#                             `ID URL`; `... stop ID` stops it (returns once it is gone);
#                             `... start ID` starts it again on the same port with the same data
#                             and keys (returns once its client API answers)
#   APOGEE_TEST_NIO_PYTHON / APOGEE_TEST_NIO_PEER  alice driven with matrix-nio: run
#                             `$APOGEE_TEST_NIO_PYTHON $APOGEE_TEST_NIO_PEER COMMAND ...`
#                             (scripts/lib/nio_peer.py lists the commands)
# Synapse: SQLite in a temp dir, no key notaries, no rate limits, certificates of federation
# peers not checked and loopback allowed (federation_verify_certificates: false,
# ip_range_whitelist), so it federates with an Apogee that has a self-signed certificate and a
# `localhost:PORT` server name. Stopped when this script exits; exit status is CMD's.
# (The mechanics: scripts/lib/pip-server.sh.)
#
# Env: APOGEE_SYNAPSE_DIR  venv location (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-synapse)
#      APOGEE_NIO_DIR      matrix-nio's venv (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-nio)
set -euo pipefail

NAME=synapse
SYNAPSE_VERSION=1.163.2
PIP_SPEC=matrix-synapse==$SYNAPSE_VERSION
BIN=register_new_matrix_user
URL_VAR=APOGEE_TEST_SYNAPSE_URL
URL_SCHEME=http://
VENV=${APOGEE_SYNAPSE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-synapse}
SHARED_SECRET=apogee-test-registration
# The Synapse user's client library in the interop tests (its own venv: aiohttp beside Twisted
# is no business of Synapse's).
NIO_SPEC=matrix-nio==0.26.0
NIO_VENV=${APOGEE_NIO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-nio}

# Writes a complete configuration for a Synapse on PORT with its data in DIR (no
# --generate-config: it costs a Python start).
write_config() {
  local port=$1 dir=$2
  mkdir -p "$dir/media"
  # A signing key in Synapse's own format: "ed25519 <version> <unpadded base64 seed>".
  echo "ed25519 a_test $(head -c 32 /dev/urandom | base64 | tr -d '=')" >"$dir/signing.key"
  cat >"$dir/homeserver.yaml" <<YAML
server_name: synapse.test
pid_file: $dir/homeserver.pid
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources: [{names: [client, federation], compress: false}]
database:
  name: sqlite3
  args: {database: $dir/homeserver.db}
media_store_path: $dir/media
signing_key_path: $dir/signing.key
registration_shared_secret: $SHARED_SECRET
macaroon_secret_key: apogee-test-macaroon
form_secret: apogee-test-form
report_stats: false
enable_metrics: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_verify_certificates: false
ip_range_whitelist: ['127.0.0.0/8', '::1/128']
rc_message: {per_second: 1000, burst_count: 1000}
rc_registration: {per_second: 1000, burst_count: 1000}
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
rc_joins:
  local: {per_second: 1000, burst_count: 1000}
  remote: {per_second: 1000, burst_count: 1000}
rc_federation: {window_size: 1000, sleep_limit: 1000, sleep_delay: 0, reject_limit: 1000, concurrent: 100}
rc_room_creation: {per_second: 1000, burst_count: 1000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 1000}
  per_user: {per_second: 1000, burst_count: 1000}
  per_issuer: {per_second: 1000, burst_count: 1000}
YAML
}

# Runs the shared Synapse in the foreground.
serve() {
  write_config "$1" "$TMP/synapse"
  exec "$VENV/bin/python" -m synapse.app.homeserver -c "$TMP/synapse/homeserver.yaml"
}
version() { echo "$SYNAPSE_VERSION"; }

# Waits until the Synapse at URL answers its client API (the port accepts connections first).
wait_ready() {
  local url=$1
  for _ in $(seq 600); do
    if "$VENV/bin/python" - "$url" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/_matrix/client/versions", timeout=2)
PY
    sleep 0.1
  done
  return 1
}

after_ready() {
  local url=http://127.0.0.1:$PORT
  wait_ready "$url" || true
  "$VENV/bin/register_new_matrix_user" -k "$SHARED_SECRET" -u alice -p alicepass --no-admin "$url" >&2
  printf '#!/usr/bin/env bash\nexec bash %q --ctl %q "$@"\n' "$(realpath "${BASH_SOURCE[0]}")" "$TMP" >"$TMP/synapse-ctl"
  chmod +x "$TMP/synapse-ctl"
  export APOGEE_TEST_SYNAPSE_CTL=$TMP/synapse-ctl
  export APOGEE_TEST_SYNAPSE_NAME=synapse.test
  export APOGEE_TEST_SYNAPSE_USER=alice
  export APOGEE_TEST_SYNAPSE_PASSWORD=alicepass
  if ! "$NIO_VENV/bin/python" -c 'import nio' 2>/dev/null; then
    echo "with-synapse: installing $NIO_SPEC into $NIO_VENV" >&2
    python3 -m venv "$NIO_VENV"
    "$NIO_VENV/bin/pip" install -q --disable-pip-version-check "$NIO_SPEC" >&2
  fi
  export APOGEE_TEST_NIO_PYTHON=$NIO_VENV/bin/python
  APOGEE_TEST_NIO_PEER=$(realpath "$(dirname "${BASH_SOURCE[0]}")/lib/nio_peer.py")
  export APOGEE_TEST_NIO_PEER
}

# The private Synapses of the control command, stopped at exit.
after_stop() {
  local pid_file
  for pid_file in "$TMP"/private-*/pid; do
    [ -e "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
}

# `--ctl TMP ACTION [ID]`: the control command (see the top of this file).
ctl() {
  local action=${1:-} id=${2:-} dir port pid
  case "$action" in
    new)
      id=$(date +%s%N)
      dir=$TMP/private-$id
      # shellcheck source=lib/harness.sh
      source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
      port=$(free_port)
      write_config "$port" "$dir"
      echo "$port" >"$dir/port"
      ctl start "$id" >/dev/null
      "$VENV/bin/register_new_matrix_user" -k "$SHARED_SECRET" -u alice -p alicepass --no-admin \
        "http://127.0.0.1:$port" >&2
      echo "$id http://127.0.0.1:$port"
      ;;
    start)
      dir=$TMP/private-$id
      port=$(cat "$dir/port")
      nohup "$VENV/bin/python" -m synapse.app.homeserver -c "$dir/homeserver.yaml" \
        >>"$dir/server.log" 2>&1 </dev/null &
      echo $! >"$dir/pid"
      wait_ready "http://127.0.0.1:$port" || {
        echo "synapse-ctl: Synapse $id did not start" >&2
        tail -n 20 "$dir/server.log" >&2
        return 1
      }
      ;;
    stop)
      pid=$(cat "$TMP/private-$id/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 300); do
        # Gone (or a zombie, should it still have a parent).
        if [ ! -e "/proc/$pid" ] || grep -q ') Z' "/proc/$pid/stat"; then return 0; fi
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
      ;;
    *)
      echo "usage: synapse-ctl new | stop ID | start ID" >&2
      return 2
      ;;
  esac
}

if [ "${1:-}" = --ctl ]; then
  TMP=$2
  shift 2
  ctl "$@"
  exit $?
fi

# shellcheck source=lib/pip-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/pip-server.sh"
