#!/usr/bin/env bash
# Usage: scripts/ddp-client-test.sh
#
# Runs tests/node/ddp-client.cjs — Rocket.Chat's official @rocket.chat/ddp-client (npm) against a
# fresh apogee on a free loopback port. Node 20 needs --experimental-websocket for the client's
# global WebSocket.
# Env: APOGEE_BIN  server binary (default: <cargo target dir>/debug/apogee, built by the caller)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${APOGEE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/apogee}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT/tests/node" && npm ci --no-audit --no-fund --loglevel=error)

"$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" 2>"$WORK/server.log" &
SERVER_PID=$!
ADDR=
for _ in $(seq 1 100); do
  ADDR=$(sed -n 's/.*address=\([0-9.:]*\).*/\1/p' "$WORK/server.log" | head -n 1)
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "apogee did not start"; cat "$WORK/server.log"; exit 1; }

cd "$ROOT/tests/node"
APOGEE_URL="http://$ADDR" node --experimental-websocket ddp-client.cjs || {
  echo "---- server log (tail) ----"
  tail -n 40 "$WORK/server.log"
  exit 1
}
