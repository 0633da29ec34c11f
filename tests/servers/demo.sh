#!/usr/bin/env bash
# `make demo`: the seed's demo story through the CLI against a local
# s3s-fs on a free loopback port, with a scratch folder that is removed after.
# Installs s3s-fs alone if missing. Each command is printed as it can be
# pasted into a shell, the data quoted.
# Usage: tests/servers/demo.sh PATH-TO-S3WAL
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
s3wal=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
scratch=$(mktemp -d "${TMPDIR:-/tmp}/s3wal-demo.XXXXXX")
trap '"$here/s3s-fs.sh" stop "$scratch/server"; rm -rf "$scratch"' EXIT

S3WAL_ONLY_S3S_FS=1 "$here/install.sh" >/dev/null
"$here/s3s-fs.sh" start "$scratch/server" >/dev/null
# shellcheck disable=SC1091
. "$scratch/server/env"

export AWS_ENDPOINT_URL=$S3WAL_TEST_S3S_ENDPOINT
export AWS_ACCESS_KEY_ID=$S3WAL_TEST_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3WAL_TEST_SECRET_KEY
export S3WAL_LOCK_DIR=$scratch/locks
cd "$scratch"
# A word as a shell reads it back: bare if it is plain, else in single quotes.
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=-]+$ ]]; then
    printf %s "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}
# Prints the command, runs it, and prints its output as comments, so that
# every line printed can be pasted into a shell.
wal() {
  local word line=s3wal
  for word in --bucket "$S3WAL_TEST_S3S_BUCKET" --prefix wal-demo "$@"; do
    line+=" $(quote "$word")"
  done
  echo "$line"
  "$s3wal" --bucket "$S3WAL_TEST_S3S_BUCKET" --prefix wal-demo "$@" | sed 's/^/# /'
}
echo "# against s3s-fs at $AWS_ENDPOINT_URL (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,"
echo "# AWS_SECRET_ACCESS_KEY and S3WAL_LOCK_DIR set for it)"
wal recover
for n in 1 2 3 4 5; do wal append "Record #$n"; done
wal read 3
wal last
wal truncate 2
wal recover
