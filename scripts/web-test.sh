#!/usr/bin/env bash
# Usage: scripts/web-test.sh [--screenshots] [--no-build]
#
# The web client's tests: type check (tsc), unit tests (Vitest), the initial JS size budget
# (web/scripts/size.mjs: 250 KB gzipped), then the end-to-end tests
# (web/e2e/*.test.mjs) — Debian's Chromium driven by playwright-core against a real apogee on a
# free loopback port. Installs what is missing: the `chromium` Debian package (apt-get, as root)
# and the client's npm packages (npm ci). The browser is never downloaded by Playwright.
#   --screenshots  also save the main screens as docs/screenshots/*.png
#   --no-build     use APOGEE_BIN as is (default: cargo build -p apogee-server first)
#   --e2e-only     skip the type check, unit tests and size check
# Env: APOGEE_BIN      server binary (default: <cargo target dir>/debug/apogee)
#      CHROMIUM_BIN    browser (default: /usr/bin/chromium)
#      APOGEE_TEST_DATABASE_URL  when set (scripts/with-postgres.sh), each server gets a fresh
#                      PostgreSQL database there instead of SQLite
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${APOGEE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/apogee}
SCREENSHOTS=0 BUILD=1 UNIT=1
for arg in "$@"; do
  case $arg in
    --screenshots) SCREENSHOTS=1 ;;
    --no-build) BUILD=0 ;;
    --e2e-only) UNIT=0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

CHROMIUM=${CHROMIUM_BIN:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium is missing ($CHROMIUM) and installing it needs root: apt-get install chromium" >&2
    exit 1
  fi
  echo "apt-get install chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

cd "$ROOT/web"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "$UNIT" -eq 1 ]; then
  echo "---- tsc --noEmit"
  npx --no-install tsc --noEmit
  echo "---- vitest"
  npx --no-install vitest run
  echo "---- initial JS size (budget: 250 KB gzipped)"
  SIZE_DIR=$(mktemp -d)
  trap 'rm -rf "$SIZE_DIR"' EXIT
  npx --no-install vite build --logLevel warn --outDir "$SIZE_DIR" --emptyOutDir
  node scripts/size.mjs "$SIZE_DIR"
fi

if [ "$BUILD" -eq 1 ]; then
  (cd "$ROOT" && cargo build -p apogee-server)
fi
[ -x "$BIN" ] || { echo "no server binary at $BIN" >&2; exit 1; }

BACKEND=SQLite
[ -n "${APOGEE_TEST_DATABASE_URL:-}" ] && BACKEND=PostgreSQL
echo "---- end-to-end (Chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"); $BACKEND)"
export APOGEE_BIN=$BIN CHROMIUM_BIN=$CHROMIUM
[ "$SCREENSHOTS" -eq 1 ] && export APOGEE_SCREENSHOTS=1
# Each file is one scenario sharing its browsers and server. A file that fails is run once more and
# the retry is reported as FLAKY: some real-time steps still time out now and then on a loaded
# machine (see ARCHITECTURE.md, "Not there yet"); a file failing twice fails the step.
LOG=$(mktemp)
trap 'rm -f "$LOG"; rm -rf "${SIZE_DIR:-}"' EXIT
if node --test --test-concurrency=1 --test-reporter=spec e2e/ 2>&1 | tee "$LOG"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
  exit 0
fi
mapfile -t FAILED < <(grep -oE '^test at e2e/[^:]+' "$LOG" | sed 's/^test at //' | sort -u)
[ ${#FAILED[@]} -gt 0 ] || exit 1
echo "---- FLAKY? retrying once: ${FAILED[*]}"
node --test --test-concurrency=1 --test-reporter=spec "${FAILED[@]}"
echo "---- FLAKY: ${FAILED[*]} failed once and passed on the retry"
