#!/usr/bin/env bash
# Usage: scripts/e2ee-interop.sh
#
# Rocket.Chat's E2EE formats between WebCrypto (Node >= 20) and apogee-e2ee, both directions:
#   1. the committed vectors are what tests/e2ee/e2ee-vectors.mjs still generates (--check);
#   2. a fresh vector file (new WebCrypto-random OAEP) is decrypted by the Rust tests;
#   3. Rust-made keys, E2EKeys, envelopes, wrapped private keys and files are opened by WebCrypto
#      (crates/apogee-e2ee/tests/interop.rs runs tests/e2ee/check-rust.mjs).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
node --version
node tests/e2ee/e2ee-vectors.mjs tests/e2ee/e2ee-vectors.json --check
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node tests/e2ee/e2ee-vectors.mjs "$tmp/fresh-vectors.json"
APOGEE_E2EE_VECTORS="$tmp/fresh-vectors.json" cargo test -p apogee-e2ee --test vectors
cargo test -p apogee-e2ee --test interop
