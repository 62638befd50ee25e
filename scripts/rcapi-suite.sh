#!/usr/bin/env bash
# Usage: scripts/rcapi-suite.sh [--update-baseline [--force]] [--no-build] [--setup-only] [-- PYTEST_ARGS...]
#
# Runs the rocketchat-API 3.7.1 pytest suite (the tests/ folder of its PyPI sdist; nothing third-party
# is committed) against a fresh apogee server that this script starts on 127.0.0.1:3000 (the suite's
# URL is hard-coded there), then gates on tests/rcapi-baseline.txt: every id listed there must pass.
# pytest's own exit code (1 while any test fails) is not the verdict; the baseline is.
#
# Database: SQLite in a temp data dir, or, when APOGEE_TEST_DATABASE_URL is set (scripts/with-postgres.sh),
# a fresh database created for this run on that PostgreSQL server and dropped afterwards.
#
# Options:
#   --update-baseline  rewrite the baseline to the passing set; refuses to drop ids unless --force
#   --force            with --update-baseline: allow dropping ids that no longer pass
#   --no-build         don't run `cargo build -p apogee-server` first
#   --setup-only       only prepare the venv and the unpacked sdist, then exit
#   -- PYTEST_ARGS     extra pytest arguments (e.g. -k login, --tb=long, tests/test_user.py::test_me;
#                      test paths must start with tests/); a narrowed run gates only the baseline ids
#                      it selected
# Env:
#   APOGEE_BIN           server binary (default: <cargo target dir>/debug/apogee, built first)
#   APOGEE_PEER_DIR      venv + sdist cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-peer)
#   RCAPI_TEST_TIMEOUT   per-test timeout in seconds (default 30)
#   RCAPI_TOTAL_TIMEOUT  whole pytest run limit in seconds (default 600)
#   RCAPI_START_TIMEOUT  seconds to wait for GET /api/info (default 90)
#   RCAPI_SERVER_LOG     if set, copy the server log there at exit
#   RCAPI_KEEP=1         keep the run's temp dir (server data, log, pytest work copy)
set -euo pipefail
export LC_ALL=C # stable sort/comm order for the baseline

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASELINE=$ROOT/tests/rcapi-baseline.txt
RCAPI_VERSION=3.7.1
# Pinned so that a baseline recorded today means the same thing later.
PIP_PKGS=("rocketchat-API==$RCAPI_VERSION" "pytest==9.2.0" "pytest-timeout==2.4.0" "semver==3.1.1" "pymongo==4.20.0")
PEER=${APOGEE_PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-peer}
VENV=$PEER/venv-$RCAPI_VERSION
SDIST_DIR=$PEER/rocketchat_api-$RCAPI_VERSION
SERVER_URL=http://127.0.0.1:3000
TEST_TIMEOUT=${RCAPI_TEST_TIMEOUT:-30}
TOTAL_TIMEOUT=${RCAPI_TOTAL_TIMEOUT:-600}
START_TIMEOUT=${RCAPI_START_TIMEOUT:-90}

UPDATE=0 FORCE=0 BUILD=1 SETUP_ONLY=0
PYTEST_EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --update-baseline) UPDATE=1 ;;
    --force) FORCE=1 ;;
    --no-build) BUILD=0 ;;
    --setup-only) SETUP_ONLY=1 ;;
    --) shift; PYTEST_EXTRA=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "rcapi-suite: unknown argument: $1 (pytest arguments go after --)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$FORCE" = 1 ] && [ "$UPDATE" = 0 ]; then
  echo "rcapi-suite: --force only makes sense with --update-baseline" >&2
  exit 2
fi
if [ "$FORCE" = 1 ] && [ ${#PYTEST_EXTRA[@]} -gt 0 ]; then
  echo "rcapi-suite: --update-baseline --force needs a full run (no pytest arguments)" >&2
  exit 2
fi

log() { echo "rcapi-suite: $*" >&2; }

# --- venv and sdist (cached across runs; rebuilt when the pins change) -----------------------------
setup_peer() {
  mkdir -p "$PEER"
  local want
  want=$(printf '%s\n' "${PIP_PKGS[@]}")
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.apogee-pins" 2>/dev/null)" != "$want" ]; then
    log "creating venv $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV"; then
      # Debian's own python3 needs python3-venv for this.
      [ "$(id -u)" -eq 0 ] || { log "python3 -m venv failed; install python3-venv"; exit 1; }
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$VENV"
      python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PKGS[@]}"
    printf '%s\n' "$want" >"$VENV/.apogee-pins"
  fi
  if [ ! -f "$SDIST_DIR/tests/conftest.py" ]; then
    log "fetching the rocketchat-API $RCAPI_VERSION sdist"
    local dl
    dl=$(mktemp -d "$PEER/dl.XXXXXX")
    "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary rocketchat-API \
      -d "$dl" "rocketchat-API==$RCAPI_VERSION"
    tar -xzf "$dl"/*.tar.gz -C "$dl"
    rm -rf "$SDIST_DIR"
    # The top folder's spelling depends on the sdist's normalisation; take whatever holds tests/.
    local top
    top=$(ls -d "$dl"/*/tests/conftest.py)
    mv "${top%/tests/conftest.py}" "$SDIST_DIR"
    rm -rf "$dl"
  fi
  # pytest plugin: records the ids of tests that passed in every phase (setup, call, teardown),
  # appending as it goes so a run cut short by the total timeout still reports what passed.
  mkdir -p "$PEER/plugin"
  cat >"$PEER/plugin/apogee_rcapi_report.py" <<'EOF'
# Written by scripts/rcapi-suite.sh.
import os

_passed_path = os.environ["APOGEE_RCAPI_PASSED"]
_selected_path = os.environ["APOGEE_RCAPI_SELECTED"]
_call_passed = set()
_bad = set()


def pytest_collection_finish(session):
    with open(_selected_path, "w") as f:
        for item in session.items:
            f.write(item.nodeid + "\n")


def pytest_runtest_logreport(report):
    if report.failed or hasattr(report, "wasxfail"):
        _bad.add(report.nodeid)
    if report.when == "call" and report.passed:
        _call_passed.add(report.nodeid)
    if report.when == "teardown" and report.nodeid in _call_passed and report.nodeid not in _bad:
        with open(_passed_path, "a") as f:
            f.write(report.nodeid + "\n")
EOF
}

setup_peer
if [ "$SETUP_ONLY" = 1 ]; then
  log "venv and sdist ready under $PEER"
  exit 0
fi

# --- server binary ----------------------------------------------------------------------------------
if [ -n "${APOGEE_BIN:-}" ]; then
  BIN=$APOGEE_BIN
else
  if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build -q -p apogee-server)
  fi
  TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  BIN=$TARGET_DIR/debug/apogee
fi
[ -x "$BIN" ] || { log "server binary $BIN not found (build it, or set APOGEE_BIN)"; exit 1; }

# The suite's URL is fixed, so a stray server on :3000 would silently be tested instead of ours.
if (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null; then
  log "something already listens on 127.0.0.1:3000; stop it first"
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/apogee-rcapi.XXXXXX")
SERVER_LOG=$WORK/server.log
SERVER_PID=
SITES_PID=
CHILD=
PG_DB=
PSQL=
ADMIN_DB_URL=

server_log_tail() {
  echo "---- last ${1:-60} lines of the server log ----" >&2
  tail -n "${1:-60}" "$SERVER_LOG" >&2 || true
  echo "---- end of server log ----" >&2
}

# shellcheck disable=SC2317  # called from a trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server did not stop on SIGTERM within 10 s; killing it"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$SITES_PID" ] && kill -0 "$SITES_PID" 2>/dev/null; then
    kill -TERM "$SITES_PID" 2>/dev/null || true
    wait "$SITES_PID" 2>/dev/null || true
  fi
  if [ -n "$PG_DB" ]; then
    "$PSQL" -X -q "$ADMIN_DB_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
      log "could not drop database $PG_DB"
  fi
  if [ -n "${RCAPI_SERVER_LOG:-}" ] && [ -f "$SERVER_LOG" ]; then
    cp "$SERVER_LOG" "$RCAPI_SERVER_LOG" || true
  fi
  if [ "${RCAPI_KEEP:-0}" = 1 ]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
# On a signal, pass it on to pytest (if running), let it finish, then clean up.
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

# --- database ---------------------------------------------------------------------------------------
DB_ARGS=()
BACKEND=sqlite
if [ -n "${APOGEE_TEST_DATABASE_URL:-}" ]; then
  BACKEND=postgres
  PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
  ADMIN_DB_URL=$APOGEE_TEST_DATABASE_URL
  # The suite needs an empty database (other tests may have used the one in the URL): make one.
  PG_DB=apogee_rcapi_$$_$RANDOM
  "$PSQL" -X -q -v ON_ERROR_STOP=1 "$ADMIN_DB_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
  url_base=${ADMIN_DB_URL%%\?*}
  url_query=${ADMIN_DB_URL#"$url_base"}
  DB_ARGS=(--database-url "${url_base%/*}/$PG_DB$url_query")
fi

# --- the two "internet" sites the suite uses -----------------------------------------------------
# test_users_set_avatar_from_url fetches https://files.akiel.dev/Wikipedia_svg_logo.svg and
# test_chat_get_url_preview https://www.w3schools.com/tags/movie.mp4. Both are served here on
# loopback over TLS with a CA made for this run; the server reaches them through its outbound
# client's test hooks (APOGEE_HTTP_RESOLVE sends the names here, APOGEE_HTTP_EXTRA_CA trusts the
# CA), so the address filter and certificate checks run as they would against the real sites.
start_sites() {
  local dir=$WORK/sites
  mkdir -p "$dir/www/tags"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=apogee rcapi test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=files.akiel.dev" \
    -keyout "$dir/site.key" -out "$dir/site.csr" 2>/dev/null
  printf 'subjectAltName=DNS:files.akiel.dev,DNS:www.w3schools.com\nextendedKeyUsage=serverAuth\n' >"$dir/site.ext"
  openssl x509 -req -in "$dir/site.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/site.ext" -out "$dir/site.pem" 2>/dev/null
  cat >"$dir/www/Wikipedia_svg_logo.svg" <<'SVG'
<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><circle cx="32" cy="32" r="30" fill="#eee" stroke="#333"/><text x="32" y="42" font-size="28" text-anchor="middle">W</text></svg>
SVG
  # An MP4's first box (ftyp) is enough for a preview's headers.
  printf '\0\0\0\x18ftypmp42\0\0\0\0mp42isom' >"$dir/www/tags/movie.mp4"
  "$VENV/bin/python" - "$dir" <<'PY' 2>"$dir/access.log" &
import functools, http.server, ssl, sys
d = sys.argv[1]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d + "/www")
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/site.pem", d + "/site.key")
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
with open(d + "/port.tmp", "w") as f:
    f.write(str(httpd.server_address[1]))
import os
os.rename(d + "/port.tmp", d + "/port")
httpd.serve_forever()
PY
  SITES_PID=$!
  for _ in $(seq 50); do
    [ -f "$dir/port" ] && break
    sleep 0.1
  done
  [ -f "$dir/port" ] || { log "the test sites did not start"; exit 1; }
  local port
  port=$(cat "$dir/port")
  SITES_RESOLVE="files.akiel.dev=127.0.0.1:$port,www.w3schools.com=127.0.0.1:$port"
  SITES_CA=$dir/ca.pem
}
start_sites

# --- server -----------------------------------------------------------------------------------------
log "starting $BIN ($BACKEND) on 127.0.0.1:3000"
# The suite's first registered user (user1) must become admin, so no ADMIN_* from the caller's env;
# no APOGEE_DATABASE_URL/APOGEE_CONFIG either: the backend is chosen here.
env -u ADMIN_USERNAME -u ADMIN_PASS -u ADMIN_EMAIL -u APOGEE_DATABASE_URL -u APOGEE_CONFIG \
  OVERWRITE_SETTING_API_Enable_Rate_Limiter=false \
  OVERWRITE_SETTING_Accounts_TwoFactorAuthentication_Enforce_Password_Fallback=false \
  CREATE_TOKENS_FOR_USERS=true \
  CREATE_TOKENS_FOR_USERS_SECRET=1234567890abcdef \
  APOGEE_HTTP_RESOLVE="$SITES_RESOLVE" \
  APOGEE_HTTP_EXTRA_CA="$SITES_CA" \
  "$BIN" serve --listen 127.0.0.1:3000 --data-dir "$WORK/data" "${DB_ARGS[@]}" \
  </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

ready=0
deadline=$((SECONDS + START_TIMEOUT))
while [ $SECONDS -lt $deadline ]; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    log "server exited with status $rc before answering GET /api/info"
    server_log_tail
    exit 1
  fi
  if "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$SERVER_URL/api/info" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  log "server did not answer GET /api/info within ${START_TIMEOUT}s"
  server_log_tail
  exit 1
fi
log "server ready"

# --- pytest -----------------------------------------------------------------------------------------
# Work on a copy: tests open tests/assets/* relative to CWD and import tests.conftest, and may leave files.
cp -r "$SDIST_DIR" "$WORK/rcapi"
PASSED_RAW=$WORK/passed.raw
SELECTED=$WORK/selected.txt
: >"$PASSED_RAW"
: >"$SELECTED"
# Default to the whole suite unless the extra arguments name test paths or ids themselves.
TARGETS=(tests)
for a in "${PYTEST_EXTRA[@]}"; do
  case $a in tests | tests/*) TARGETS=() ;; esac
done
# pytest runs as a background job so that `wait` lets our signal traps fire at once (they pass the
# signal on); `trap - INT QUIT` undoes bash's ignoring of those in background jobs, and timeout's
# --foreground keeps pytest in our process group, so Ctrl-C reaches it.
(
  trap - INT QUIT
  cd "$WORK/rcapi"
  exec env APOGEE_RCAPI_PASSED="$PASSED_RAW" APOGEE_RCAPI_SELECTED="$SELECTED" PYTHONPATH="$PEER/plugin" \
    PYTHONDONTWRITEBYTECODE=1 \
    timeout --foreground -k 30 "$TOTAL_TIMEOUT" "$VENV/bin/python" -m pytest "${TARGETS[@]}" \
    -p no:cacheprovider -p apogee_rcapi_report \
    --timeout="$TEST_TIMEOUT" -q --tb=line \
    --deselect tests/test_banners.py \
    --deselect tests/test_livechat.py \
    "${PYTEST_EXTRA[@]}"
) </dev/null &
CHILD=$!
pytest_rc=0
wait "$CHILD" || pytest_rc=$?
CHILD=

# 0: all passed, 1: some failed; anything else means the run itself broke.
run_broken=0
case $pytest_rc in
  0 | 1) ;;
  124 | 137) log "pytest hit the ${TOTAL_TIMEOUT}s total timeout"; run_broken=1 ;;
  *) log "pytest exited with status $pytest_rc (interrupted, usage error or nothing collected)"; run_broken=1 ;;
esac
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  log "the server died during the run"
  server_log_tail
  run_broken=1
fi

# --- compare with the baseline ----------------------------------------------------------------------
PASSED=$WORK/passed.txt
BASE_ALL=$WORK/baseline.txt
BASE=$WORK/baseline.gated.txt
sort -u "$PASSED_RAW" >"$PASSED"
touch "$BASELINE"
grep -v '^[[:space:]]*$' "$BASELINE" | sort -u >"$BASE_ALL" || true
if [ ${#PYTEST_EXTRA[@]} -gt 0 ]; then
  # A narrowed run gates only the baseline ids it selected.
  sort -u "$SELECTED" | comm -12 "$BASE_ALL" - >"$BASE"
else
  cp "$BASE_ALL" "$BASE"
fi
MISSING=$WORK/missing.txt
NEW=$WORK/new.txt
comm -23 "$BASE" "$PASSED" >"$MISSING"
comm -13 "$BASE_ALL" "$PASSED" >"$NEW"
n_selected=$(sort -u "$SELECTED" | wc -l)
n_passed=$(wc -l <"$PASSED")
n_base=$(wc -l <"$BASE")
n_missing=$(wc -l <"$MISSING")
n_new=$(wc -l <"$NEW")

echo
echo "==== rocketchat-API $RCAPI_VERSION suite vs baseline ($BACKEND) ===="
echo "passed: $n_passed of $n_selected selected tests"
if [ "$n_new" -gt 0 ]; then
  echo "passing but not in tests/rcapi-baseline.txt ($n_new; record with scripts/rcapi-suite.sh --update-baseline):"
  sed 's/^/  + /' "$NEW"
fi
if [ "$n_missing" -gt 0 ]; then
  echo "BASELINE TESTS THAT DID NOT PASS ($n_missing of $n_base):"
  sed 's/^/  - /' "$MISSING"
  [ "$run_broken" = 1 ] || server_log_tail 40
else
  echo "baseline: all $n_base baseline tests passed"
fi

if [ "$UPDATE" = 1 ]; then
  if [ "$run_broken" = 1 ]; then
    log "not updating the baseline from a broken run"
    exit 1
  fi
  if [ "$n_missing" -gt 0 ] && [ "$FORCE" = 0 ]; then
    log "refusing to drop $n_missing baseline ids that did not pass (use --force to drop them)"
    exit 1
  fi
  if [ "$FORCE" = 1 ]; then
    cp "$PASSED" "$BASELINE"
  else
    sort -u "$BASE_ALL" "$PASSED" >"$BASELINE"
  fi
  echo "baseline updated: $(wc -l <"$BASELINE") ids in tests/rcapi-baseline.txt"
  exit 0
fi

if [ "$run_broken" = 1 ] || [ "$n_missing" -gt 0 ]; then
  echo "rcapi ($BACKEND): FAILED"
  exit 1
fi
echo "rcapi ($BACKEND): OK"
