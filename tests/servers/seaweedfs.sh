#!/usr/bin/env bash
# Run a single-node SeaweedFS (`weed mini`: master, volume, filer and S3 in
# one process) for tests, on loopback only, every port pinned, everything
# (data, config, log, pid, env) under DIR. See README.md, "Two commands".
# Usage: tests/servers/seaweedfs.sh start DIR   -> writes DIR/env, prints the endpoint
#        tests/servers/seaweedfs.sh stop DIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
AK=s3wal-test-ak
SK=s3wal-test-sk-0123456789
BUCKET=s3wal-test
TOOLS="${S3WAL_TOOLS:-$HOME/.cache/s3wal/tools}"
BIN="$TOOLS/seaweedfs/bin/weed"
[[ -x "$BIN" ]] || BIN=weed

[[ $# -eq 2 ]] || usage
DIR=$2

SERVER=seaweedfs
SERVER_LOG=weed.log

# `weed mini` is one process (its components are goroutines), so its PID
# is all there is to stop. It does not always remove its gRPC sockets,
# which it puts in /tmp named by port: those of our ports go too.
stop() {
  local port
  stop_pid "$DIR/weed.pid"
  for port in $(cat "$DIR/grpc.ports" 2>/dev/null); do
    rm -f /tmp/seaweedfs-*-grpc-"$port".sock
  done
}

start() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  local pid base code
  refuse_if_running "$DIR/weed.pid" seaweedfs
  rm -rf "$DIR/env" "$DIR/data"
  mkdir -p "$DIR/data"
  # Five HTTP ports from base and their gRPC ports 10000 above: the
  # worker inside `weed mini` dials the admin server at its HTTP port +
  # 10000 whatever -admin.port.grpc says, so every gRPC port keeps that
  # offset.
  base=$(python3 "$HERE/free_ports.py" 0-4 10000-10004)
  [[ -n $base ]] || die "no free port range"
  local s3=$base master=$((base + 1)) volume=$((base + 2)) filer=$((base + 3)) admin=$((base + 4))
  seq $((base + 10000)) $((base + 10004)) >"$DIR/grpc.ports"
  cat >"$DIR/s3.json" <<JSON
{"identities": [{"name": "s3wal-test",
  "credentials": [{"accessKey": "$AK", "secretKey": "$SK"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # Telemetry off: the tests talk to loopback only. The Iceberg, Lance,
  # WebDAV and admin UI servers are off or pinned; the local sockets of
  # the S3 gateway and the filer live under DIR (their gRPC sockets go to
  # /tmp, named by port: see stop). Logs go to stderr, not to files in
  # $TMPDIR, and the toml configuration is looked for in DIR only, never
  # in ~/.seaweedfs or /etc/seaweedfs.
  cd "$DIR"
  "$BIN" -logtostderr -config_dir="$DIR" \
    mini -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.telemetry=false -s3.config="$DIR/s3.json" \
    -s3.port="$s3" -s3.port.grpc=$((s3 + 10000)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.port="$master" -master.port.grpc=$((master + 10000)) \
    -volume.port="$volume" -volume.port.grpc=$((volume + 10000)) -volume.preStopSeconds=0 \
    -filer.port="$filer" -filer.port.grpc=$((filer + 10000)) \
    -admin.ui=false -admin.port="$admin" -admin.port.grpc=$((admin + 10000)) \
    -webdav=false -s3.localSocket="$DIR/s3.sock" -filer.localSocket="$DIR/filer.sock" \
    >"$DIR/weed.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/weed.pid"
  local endpoint="http://127.0.0.1:$s3"
  # The bucket's creation is the readiness probe: it needs the whole
  # chain (S3, filer, master) up. Give it at most 30 s.
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || die "exited during startup"
    code=$(curl -s -o "$DIR/create-bucket.out" -w '%{http_code}' --max-time 5 \
      --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "$endpoint/$BUCKET") || true
    if [[ $code == 200 ]]; then
      cat >"$DIR/env" <<ENV
S3WAL_TEST_WEED_ENDPOINT=$endpoint
S3WAL_TEST_WEED_BUCKET=$BUCKET
S3WAL_TEST_ACCESS_KEY=$AK
S3WAL_TEST_SECRET_KEY=$SK
ENV
      echo "$endpoint"
      return 0
    fi
    sleep 0.1
  done
  die "creating bucket $BUCKET on $endpoint still answers HTTP $code after 30 s"
}

case $1 in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
