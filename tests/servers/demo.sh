#!/usr/bin/env bash
# `make demo`: the seed's demo story through the CLI against a local
# s3s-fs on a free loopback port, with a scratch folder that is removed after.
# Usage: tests/servers/demo.sh PATH-TO-S3WAL
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
s3wal=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
scratch=$(mktemp -d "${TMPDIR:-/tmp}/s3wal-demo.XXXXXX")
trap '"$here/s3s-fs.sh" stop "$scratch/server"; rm -rf "$scratch"' EXIT

S3WAL_SKIP_RGW=1 "$here/install.sh"
"$here/s3s-fs.sh" start "$scratch/server" >/dev/null
# shellcheck disable=SC1091
. "$scratch/server/env"

export AWS_ENDPOINT_URL=$S3WAL_TEST_S3S_ENDPOINT
export AWS_ACCESS_KEY_ID=$S3WAL_TEST_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3WAL_TEST_SECRET_KEY
export S3WAL_LOCK_DIR=$scratch/locks
cd "$scratch"
wal() {
  echo "\$ s3wal --bucket $S3WAL_TEST_S3S_BUCKET --prefix wal-demo $*"
  "$s3wal" --bucket "$S3WAL_TEST_S3S_BUCKET" --prefix wal-demo "$@"
}
wal recover
for n in 1 2 3 4 5; do wal append "Record #$n"; done
wal read 3
wal last
wal truncate 2
wal recover
