#!/usr/bin/env bash
# Run a throwaway one-node Ceph cluster (mon + memstore OSD + radosgw) for tests.
# Everything (config, data, logs, sockets, pids, env) lives under DIR; it never
# reads /etc/ceph. Needs root (as in CI). See README.md, "Two commands".
# Usage: tests/servers/rgw.sh start DIR   -> writes DIR/env, prints the endpoint
#        tests/servers/rgw.sh stop DIR
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)

AK=s3wal-test-ak
SK=s3wal-test-sk-0123456789
BUCKET=s3wal-test
RGW=client.rgw.test
TIMEOUT=${S3WAL_RGW_TIMEOUT:-120} # seconds for the whole start

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
DIR=$2
CONF=$DIR/ceph.conf

# Bounded ceph CLI call against our own config only.
cephc() { timeout 15 ceph --conf "$CONF" --connect-timeout 10 "$@"; }

die() {
  trap - ERR
  echo "rgw: $*" >&2
  for f in "$DIR"/log/*; do
    [[ -f $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  stop
  exit 1
}

stop() {
  local name pid
  # One at a time, gateway first, monitor last: a radosgw whose OSD goes away
  # while it shuts down hangs until its 120 s alarm.
  for name in radosgw osd mon; do
    pid=$(cat "$DIR/$name.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || true
    # Not our child, so poll instead of `wait`; escalate after 20 s.
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$DIR/$name.pid"
  done
}

# Poll CMD until it succeeds or the start deadline passes.
wait_for() {
  local what=$1; shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.5
  done
}

osd_up() { cephc osd stat | grep -q ' 1 up'; }
http_up() { curl -s -o /dev/null --max-time 2 "$endpoint/"; }

start() {
  local t0=$SECONDS pid base fsid osd_uuid
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  CONF=$DIR/ceph.conf
  if pid=$(cat "$DIR/mon.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
    echo "rgw: $DIR already running" >&2
    exit 1
  fi
  rm -f "$DIR/env"
  trap 'die "command failed at line $LINENO"' ERR
  deadline=$((SECONDS + TIMEOUT))
  base=$(python3 "$HERE/free_ports.py" 0-19) # 20 consecutive free ports
  [[ -n $base ]] || die "no free port range"
  # base: mon v2, base+1: mon v1, base+2: RGW, base+3..19: other daemons' binds.
  endpoint="http://127.0.0.1:$((base + 2))"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mkdir -p "$DIR"/{run,log,crash,mon,osd/0,rgw}
  cat >"$CONF" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$base,v1:127.0.0.1:$((base + 1))]
public_addr = 127.0.0.1
ms_bind_port_min = $((base + 3))
ms_bind_port_max = $((base + 19))
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Without these two radosgw retries forever (get_initial_auth_request -13).
ms_mon_client_mode = crc
ms_client_mode = crc
# radosgw creates its pools one osdmap epoch at a time; proposing every 0.1 s
# instead of 1 s brings the start from about 15 s down to about 3 s.
paxos_propose_interval = 0.1
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pg_autoscale_mode = off
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.\$pid.asok
log_file = $DIR/log/\$name.log
mon_cluster_log_file = $DIR/log/cluster.log
crash_dir = $DIR/crash
keyring = $DIR/keyring
mon_data = $DIR/mon/\$name
osd_data = $DIR/osd/\$id
rgw_data = $DIR/rgw/\$name

[osd]
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64

[$RGW]
rgw_frontends = beast endpoint=127.0.0.1:$((base + 2))
# Lifecycle runs daily anyway; its thread's 5 s sleeps slow the stop by up to 10 s.
rgw_enable_lc_threads = false
CONF

  # Monitor: generated monmap + keyring, mkfs, run in the foreground (-f) in
  # the background so $! is the daemon itself.
  monmaptool --create --fsid "$fsid" \
    --addv a "[v2:127.0.0.1:$base,v1:127.0.0.1:$((base + 1))]" "$DIR/monmap" >/dev/null
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-mon --conf "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
  ceph-mon --conf "$CONF" -i a -f >"$DIR/log/mon.out" 2>&1 &
  echo $! >"$DIR/mon.pid"
  wait_for "the monitor (ceph -s)" cephc -s

  # One OSD on memstore.
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  [[ $(cephc osd new "$osd_uuid") == 0 ]] || die "ceph osd new did not return id 0"
  ceph-osd --conf "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1
  ceph-osd --conf "$CONF" -i 0 -f >"$DIR/log/osd.out" 2>&1 &
  echo $! >"$DIR/osd.pid"
  wait_for "the OSD (ceph osd stat: 1 up)" osd_up

  radosgw --conf "$CONF" -n "$RGW" -f >"$DIR/log/radosgw.out" 2>&1 &
  echo $! >"$DIR/radosgw.pid"
  wait_for "radosgw HTTP on $endpoint" http_up

  radosgw-admin --conf "$CONF" user create --uid=s3wal-test --display-name=s3wal-test \
    --access-key="$AK" --secret-key="$SK" >/dev/null
  # RGW rejects SigV4 without a signed x-amz-content-sha256, which curl 7.88
  # does not add by itself.
  local code
  code=$(curl -s -o "$DIR/log/create-bucket.out" -w '%{http_code}' --max-time 30 \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "$endpoint/$BUCKET")
  [[ $code == 200 ]] || die "creating bucket $BUCKET returned HTTP $code"

  cat >"$DIR/env" <<ENV
S3WAL_TEST_RGW_ENDPOINT=$endpoint
S3WAL_TEST_RGW_BUCKET=$BUCKET
S3WAL_TEST_ACCESS_KEY=$AK
S3WAL_TEST_SECRET_KEY=$SK
S3WAL_TEST_RGW_CONF=$CONF
ENV
  trap - ERR
  echo "rgw: up in $((SECONDS - t0)) s" >&2
  echo "$endpoint"
}

case $1 in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
