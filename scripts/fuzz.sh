#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SECONDS]
#
# Builds the cargo-fuzz targets under fuzz/ (installing cargo-fuzz if missing) and runs each for
# SECONDS (default 60) from the committed corpus (fuzz/corpus/<target>). New inputs go to a
# scratch directory, so a CI run leaves the tree clean; to grow the committed corpus, run
# `cargo fuzz run -s none <target> fuzz/corpus/<target> <scratch> -- -merge=1` in fuzz/.
# Fails on any crash; the crashing input is kept under fuzz/artifacts/.
#
# Sanitizer "none": the stable toolchain cannot build AddressSanitizer; the targets are safe Rust
# and libFuzzer still finds panics, aborts and hangs.
set -euo pipefail

SECONDS_EACH=${1:-60}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Fuzz builds use their own flags, so keep them apart from the main build cache.
export CARGO_TARGET_DIR=${APOGEE_FUZZ_TARGET_DIR:-$HOME/.cache/apogee-fuzz-target}

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

cd "$ROOT/fuzz"
for target in $(cargo fuzz list); do
  scratch=$(mktemp -d)
  echo "fuzzing $target for ${SECONDS_EACH}s"
  cargo fuzz run -s none "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1
  rm -rf "$scratch"
done
