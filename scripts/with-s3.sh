#!/usr/bin/env bash
# Usage: scripts/with-s3.sh CMD [ARGS...]
#
# Runs CMD with a private S3 API (moto's server, PyPI `moto[server]`) on a free loopback port and
# exports APOGEE_TEST_S3_ENDPOINT=http://127.0.0.1:PORT for it. moto keeps everything in memory
# and accepts any access key; tests create their own buckets. It is installed with pip into a
# venv and stopped when this script exits, whatever CMD did. Exit status is CMD's. (The
# mechanics: scripts/lib/pip-server.sh.)
#
# Env: APOGEE_S3_DIR  venv location (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-s3)
set -euo pipefail

NAME=s3
PIP_SPEC='moto[server]'
BIN=moto_server
URL_VAR=APOGEE_TEST_S3_ENDPOINT
URL_SCHEME=http://
VENV=${APOGEE_S3_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-s3}
serve() { "$SERVER_BIN" -H 127.0.0.1 -p "$1"; }
version() { "$VENV/bin/pip" show moto | awk '/^Version:/ {print $2}'; }

# shellcheck source=lib/pip-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/pip-server.sh"
