#!/usr/bin/env bash
# Run moto's server for tests: STS (AssumeRole, AssumeRoleWithWebIdentity)
# on loopback only, everything (log, pid, env) under DIR. moto accepts any
# signature and hands out keys of its own, which no S3 server of the tests
# knows: it proves the STS calls and our reading of its real answers.
# Usage: tests/servers/moto.sh start DIR   -> writes DIR/env, prints the endpoint
#        tests/servers/moto.sh stop DIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TOOLS="${S3WAL_TOOLS:-$HOME/.cache/s3wal/tools}"
BIN="$TOOLS/moto/bin/moto_server"
[[ -x "$BIN" ]] || BIN=moto_server

[[ $# -eq 2 ]] || usage
DIR=$2

SERVER=moto
SERVER_LOG=moto.log

stop() {
  stop_pid "$DIR/moto.pid"
}

start() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  local pid port
  refuse_if_running "$DIR/moto.pid" moto
  rm -f "$DIR/env"
  port=$(python3 "$(dirname "$0")/free_ports.py" 0)
  [[ -n $port ]] || die "no free port"
  # No outside calls: moto would fetch nothing for STS, but its optional
  # integrations stay off all the same.
  MOTO_DOCKER_NETWORK_MODE=none "$BIN" -H 127.0.0.1 -p "$port" >"$DIR/moto.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/moto.pid"
  local endpoint="http://127.0.0.1:$port"
  # Any HTTP answer means it is serving; give it at most 30 s (it imports
  # a lot on a busy machine).
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || die "exited during startup"
    if curl -s -o /dev/null --max-time 1 "$endpoint/moto-api/"; then
      echo "S3WAL_TEST_MOTO_ENDPOINT=$endpoint" >"$DIR/env"
      echo "$endpoint"
      return 0
    fi
    sleep 0.1
  done
  die "no HTTP answer on $endpoint after 30 s"
}

case $1 in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
