#!/usr/bin/env bash
# Usage: scripts/with-clamd.sh CMD [ARGS...]
#
# Runs CMD beside a private ClamAV daemon (Debian's clamav-daemon, apt-get installed when
# missing) and exports
#   APOGEE_TEST_CLAMD      unix:<dir>/clamd.sock
#   APOGEE_TEST_CLAMD_TCP  tcp://127.0.0.1:PORT
# The daemon has its own clamd.conf in a temp dir and a signature database made here, offline,
# for the EICAR anti-virus test string: the whole file (.hdb, md5:size:name) and the string
# anywhere in a file (.ndb, name:target:offset:hex). No freshclam, no network.
# Stopped when this script exits, whatever CMD did. Exit status is CMD's.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
log() { echo "with-clamd: $*" >&2; }

CLAMD=/usr/sbin/clamd
if [ ! -x "$CLAMD" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "clamav-daemon is not installed (need root to install it)"
    exit 1
  fi
  log "apt-get install clamav-daemon"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends clamav-daemon >/dev/null
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/apogee-clamd.XXXXXX")
chmod 755 "$TMP"
SERVER=
# shellcheck source=scripts/lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
# shellcheck disable=SC2317  # called from a trap
stop_server() { stop_server_process; }
harness_traps

# The EICAR test string, assembled so this file does not itself look like it.
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR'
EICAR+='-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p "$TMP/db"
printf '%s:%s:Apogee.Test.EICAR\n' \
  "$(printf '%s' "$EICAR" | md5sum | cut -d' ' -f1)" "${#EICAR}" >"$TMP/db/apogee-test.hdb"
printf 'Apogee.Test.EICAR.Inside:0:*:%s\n' \
  "$(printf '%s' "$EICAR" | od -An -v -tx1 | tr -d ' \n')" >"$TMP/db/apogee-test.ndb"

PORT=$(free_port)
SOCK=$TMP/clamd.sock
cat >"$TMP/clamd.conf" <<EOF
Foreground yes
LogFile $TMP/clamd.log
LogVerbose no
DatabaseDirectory $TMP/db
LocalSocket $SOCK
LocalSocketMode 666
TCPSocket $PORT
TCPAddr 127.0.0.1
# Uploads may be large; the server streams them whole (Apogee caps them first).
StreamMaxLength 2000M
MaxScanSize 2000M
MaxFileSize 2000M
Bytecode no
EOF
# clamd drops to the configured User only when one is set; it runs as whoever starts it.
"$CLAMD" --config-file="$TMP/clamd.conf" >"$TMP/server.log" 2>&1 &
SERVER=$!
ready=0
for _ in $(seq 600); do
  if [ -S "$SOCK" ] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    ready=1
    break
  fi
  kill -0 "$SERVER" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  log "clamd did not start"
  tail -n 30 "$TMP/server.log" "$TMP/clamd.log" >&2 || true
  exit 1
fi

export APOGEE_TEST_CLAMD=unix:$SOCK
export APOGEE_TEST_CLAMD_TCP=tcp://127.0.0.1:$PORT
log "$("$CLAMD" --version) ready: $APOGEE_TEST_CLAMD, $APOGEE_TEST_CLAMD_TCP"

run_cmd "$@"
