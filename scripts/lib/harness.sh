# shellcheck shell=bash
# Sourced by the scripts/with-*.sh wrappers: what running CMD beside a private, throwaway server
# needs — a free loopback port, signal and exit traps that stop the server and remove its temp
# dir whatever CMD did, and running CMD so that those traps still fire.
#
# The caller sets TMP (the server's temp dir, removed at exit unless KEEP_TMP=1), defines `log`
# and `stop_server` (called once at exit), calls `harness_traps` before starting the server and
# ends with `run_cmd "$@"`, whose exit status is CMD's.

# A random port in 20000-31999 (below Linux's ephemeral range) that nothing listens on.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# shellcheck disable=SC2317  # called from a trap
harness_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  if [ "${KEEP_TMP:-0}" = 1 ]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}

# On a signal, pass it on to CMD, let it finish, then clean up.
# shellcheck disable=SC2317  # called from a trap
harness_on_signal() {
  if [ -n "$CHILD" ]; then
    kill "-$1" "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  exit "$2"
}

harness_traps() {
  CHILD=
  trap harness_cleanup EXIT
  trap 'harness_on_signal INT 130' INT
  trap 'harness_on_signal TERM 143' TERM
}

# Stops the background server process $SERVER, if one was started.
stop_server_process() {
  if [ -n "${SERVER:-}" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
}

# Runs CMD as a background job so that `wait` lets the traps fire at once; stdin is passed on
# explicitly, and SIGINT/SIGQUIT, which bash ignores in background jobs, are reset so that Ctrl-C
# still reaches CMD.
run_cmd() {
  (
    trap - INT QUIT
    exec "$@"
  ) <&0 &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=
  exit "$rc"
}
