#!/usr/bin/env bash
# Runs the given command with TMPDIR set to a fresh, empty folder, and
# fails if the command left anything in it: every test must remove its
# scratch folders, however it ends. Memory-backed where /dev/shm exists,
# as the explorer's many small lock folders are.
# Usage: tests/leaves-no-scratch.sh COMMAND [ARGS...]
set -euo pipefail

base=/dev/shm
[ -d "$base" ] || base=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$base/s3wal-tmpdir.XXXXXX")
status=0
TMPDIR=$tmp "$@" || status=$?
left=$(ls -A "$tmp")
rm -rf "$tmp"
if [ -n "$left" ]; then
  echo "left behind in TMPDIR by: $*" >&2
  echo "$left" >&2
  exit 1
fi
exit "$status"
