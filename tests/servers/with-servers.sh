#!/usr/bin/env bash
# Installs what is missing, starts s3s-fs, Ceph RGW, SeaweedFS and moto's
# STS on free loopback ports, runs the given command with their addresses in the
# environment (S3WAL_TEST_*), and stops the servers however the command ends.
# Usage: tests/servers/with-servers.sh COMMAND [ARGS...]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/s3wal-servers.XXXXXX")

cleanup() {
  # SeaweedFS takes about 3 s to stop: meanwhile the others stop.
  "$here/seaweedfs.sh" stop "$scratch/weed" &
  "$here/s3s-fs.sh" stop "$scratch/s3s-fs" || true
  "$here/rgw.sh" stop "$scratch/rgw" || true
  "$here/moto.sh" stop "$scratch/moto" || true
  wait
  rm -rf "$scratch"
}
trap cleanup EXIT

"$here/install.sh"
echo "starting s3s-fs, Ceph RGW, SeaweedFS and moto under $scratch" >&2
"$here/s3s-fs.sh" start "$scratch/s3s-fs" >/dev/null
"$here/rgw.sh" start "$scratch/rgw" >/dev/null
"$here/seaweedfs.sh" start "$scratch/weed" >/dev/null
"$here/moto.sh" start "$scratch/moto" >/dev/null

set -a
# shellcheck disable=SC1091
. "$scratch/s3s-fs/env"
# shellcheck disable=SC1091
. "$scratch/rgw/env"
# shellcheck disable=SC1091
. "$scratch/weed/env"
# shellcheck disable=SC1091
. "$scratch/moto/env"
set +a
"$@"
