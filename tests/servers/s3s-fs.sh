#!/usr/bin/env bash
# Run an s3s-fs server for tests, everything (data, log, pid, env) under DIR.
# Usage: tests/servers/s3s-fs.sh start DIR   -> writes DIR/env, prints the endpoint
#        tests/servers/s3s-fs.sh stop DIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

AK=s3wal-test-ak
SK=s3wal-test-sk-0123456789
BUCKET=s3wal-test
TOOLS="${S3WAL_TOOLS:-$HOME/.cache/s3wal/tools}"
BIN="$TOOLS/bin/s3s-fs"
[[ -x "$BIN" ]] || BIN=s3s-fs

[[ $# -eq 2 ]] || usage
DIR=$2

SERVER=s3s-fs
SERVER_LOG=s3s-fs.log

stop() {
  stop_pid "$DIR/s3s-fs.pid"
}

start() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  local pid port
  refuse_if_running "$DIR/s3s-fs.pid" s3s-fs
  rm -f "$DIR/env"
  # Let the kernel pick a free port; the tiny race before s3s-fs binds is acceptable.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # s3s-fs maps a bucket to a folder, so creating the folder creates the bucket.
  mkdir -p "$DIR/data/$BUCKET"
  "$BIN" --host 127.0.0.1 --port "$port" --access-key "$AK" --secret-key "$SK" \
    "$DIR/data" >"$DIR/s3s-fs.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/s3s-fs.pid"
  local endpoint="http://127.0.0.1:$port"
  # Any HTTP answer (even 403) means it is serving; give it at most 10 s.
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || die "exited during startup"
    if curl -s -o /dev/null --max-time 1 "$endpoint/"; then
      cat >"$DIR/env" <<ENV
S3WAL_TEST_S3S_ENDPOINT=$endpoint
S3WAL_TEST_S3S_BUCKET=$BUCKET
S3WAL_TEST_S3S_DATA=$DIR/data
S3WAL_TEST_ACCESS_KEY=$AK
S3WAL_TEST_SECRET_KEY=$SK
ENV
      echo "$endpoint"
      return 0
    fi
    sleep 0.1
  done
  die "no HTTP answer on $endpoint after 10 s"
}

case $1 in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
