#!/usr/bin/env bash
# Usage: scripts/with-smtp.sh CMD [ARGS...]
#
# Runs CMD with a private, capturing SMTP server (aiosmtpd from PyPI, its Maildir handler) on a
# free loopback port and exports APOGEE_TEST_SMTP_URL=smtp://127.0.0.1:PORT and
# APOGEE_TEST_SMTP_DIR, the Maildir every accepted message is written to (one file under new/).
# Stopped when this script exits, whatever CMD did. Exit status is CMD's. (The mechanics:
# scripts/lib/pip-server.sh.)
#
# Env: APOGEE_SMTP_DIR  venv location (default ${XDG_CACHE_HOME:-$HOME/.cache}/apogee-smtp)
set -euo pipefail

NAME=smtp
PIP_SPEC='aiosmtpd==1.4.6'
BIN=aiosmtpd
URL_VAR=APOGEE_TEST_SMTP_URL
URL_SCHEME=smtp://
VENV=${APOGEE_SMTP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apogee-smtp}
serve() { "$SERVER_BIN" -n -l "127.0.0.1:$1" -c aiosmtpd.handlers.Mailbox "$TMP/maildir"; }
version() { "$VENV/bin/pip" show aiosmtpd | awk '/^Version:/ {print $2}'; }
after_ready() { export APOGEE_TEST_SMTP_DIR=$TMP/maildir; }

# shellcheck source=lib/pip-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/pip-server.sh"
