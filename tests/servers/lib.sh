# Shared by the scripts that run one test server process (s3s-fs.sh,
# seaweedfs.sh, moto.sh); sourced, not run.

# Says how to call a server script, and exits 2.
usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# Ends a server script: says what went wrong as server $SERVER, shows the
# end of its log $DIR/$SERVER_LOG, and stops what it started (the
# script's own `stop`).
die() {
  echo "$SERVER: $*" >&2
  tail -n 30 "$DIR/$SERVER_LOG" >&2 2>/dev/null || true
  stop
  exit 1
}

# Stops the process whose PID is in the file $1, if it runs, and removes
# the file. Not our child, so poll instead of `wait`; escalate after 10 s.
stop_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

# Exits when the process whose PID is in the file $1 still runs: server $2
# was already started in $DIR.
refuse_if_running() {
  local pid
  if pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
    echo "$2: $DIR already running" >&2
    exit 1
  fi
}
