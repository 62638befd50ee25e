#!/usr/bin/env bash
# Usage: scripts/with-synapse.sh CMD [ARGS...]
#
# Runs CMD beside a private Synapse (PyPI matrix-synapse, in a cached venv) federating on
# loopback, and exports for the tests:
#   APOGEE_TEST_SYNAPSE_URL   http://127.0.0.1:PORT  (client and federation APIs, plain HTTP)
#   APOGEE_TEST_SYNAPSE_NAME  its server name, synapse.test (reach it with
#                             --federation-resolve synapse.test=$APOGEE_TEST_SYNAPSE_URL)
#   APOGEE_TEST_SYNAPSE_USER / _PASSWORD  a registered user (alice)
# Synapse: SQLite in a temp dir, no key notaries, no rate limits, certificates of federation
# peers not checked and loopback allowed (federation_verify_certificates: false,
# ip_range_whitelist), so it federates with an Apogee that has a self-signed certificate and a
# `localhost:PORT` server name. Stopped when this script exits; exit status is CMD's.
# (The mechanics: scripts/lib/pip-server.sh.)
#
# Env: APOGEE_SYNAPSE_DIR  venv location (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-synapse)
set -euo pipefail

NAME=synapse
SYNAPSE_VERSION=1.163.2
PIP_SPEC=matrix-synapse==$SYNAPSE_VERSION
BIN=register_new_matrix_user
URL_VAR=APOGEE_TEST_SYNAPSE_URL
URL_SCHEME=http://
VENV=${APOGEE_SYNAPSE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-synapse}
SHARED_SECRET=apogee-test-registration

# Writes a complete configuration (no --generate-config: it costs a Python start) and runs
# Synapse in the foreground.
serve() {
  local port=$1 dir=$TMP/synapse
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
  exec "$VENV/bin/python" -m synapse.app.homeserver -c "$dir/homeserver.yaml"
}
version() { echo "$SYNAPSE_VERSION"; }

# The port accepts connections before Synapse answers; wait for its client API, then register.
after_ready() {
  local url=http://127.0.0.1:$PORT
  for _ in $(seq 300); do
    if "$VENV/bin/python" - "$url" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/_matrix/client/versions", timeout=2)
PY
    sleep 0.1
  done
  "$VENV/bin/register_new_matrix_user" -k "$SHARED_SECRET" -u alice -p alicepass --no-admin "$url" >&2
  export APOGEE_TEST_SYNAPSE_NAME=synapse.test
  export APOGEE_TEST_SYNAPSE_USER=alice
  export APOGEE_TEST_SYNAPSE_PASSWORD=alicepass
}

# shellcheck source=lib/pip-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/pip-server.sh"
