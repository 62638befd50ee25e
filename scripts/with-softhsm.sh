#!/usr/bin/env bash
# Usage: scripts/with-softhsm.sh CMD [ARGS...]
#
# Runs CMD with a private SoftHSM token (Debian's softhsm2, apt-get installed when missing) and
# exports, for the PKCS#11 tests:
#   APOGEE_TEST_PKCS11_MODULE  the module (libsofthsm2.so)
#   APOGEE_TEST_PKCS11_TOKEN   the token's label
#   APOGEE_TEST_PKCS11_PIN     its user PIN (a throwaway token: the PIN is not a secret)
#   SOFTHSM2_CONF              a config whose token directory is a fresh temporary one
# The token directory is removed when this script exits. Exit status is CMD's.
set -euo pipefail

if ! command -v softhsm2-util >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "softhsm2 is missing (need root to apt-get install it)" >&2
    exit 1
  fi
  echo "apt-get install softhsm2" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends softhsm2 >/dev/null
fi

MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
  if [ -f "$m" ]; then MODULE=$m; break; fi
done
if [ -z "$MODULE" ]; then
  echo "libsofthsm2.so not found" >&2
  exit 1
fi

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/tokens"
cat >"$DIR/softhsm2.conf" <<CONF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF=$DIR/softhsm2.conf
export APOGEE_TEST_PKCS11_MODULE=$MODULE
export APOGEE_TEST_PKCS11_TOKEN=apogee-test
export APOGEE_TEST_PKCS11_PIN=4711-test
softhsm2-util --init-token --free --label "$APOGEE_TEST_PKCS11_TOKEN" \
  --pin "$APOGEE_TEST_PKCS11_PIN" --so-pin 0815-test-so >/dev/null
echo "SoftHSM token '$APOGEE_TEST_PKCS11_TOKEN' ready ($MODULE)" >&2

status=0
"$@" || status=$?
exit "$status"
