#!/usr/bin/env bash
# `make test-dist`: builds the vendored source archive of `make dist` as an
# air-gapped machine would, then runs the binary's --version: unpacked in a
# scratch folder, `cargo build --offline --locked` in debug (whether it
# builds is the test, not how fast it runs), with an empty CARGO_HOME (no
# registry cache to help) and the network off: a network namespace of its
# own (`unshare -n`, as root in CI) where that works, else cargo pointed at
# a proxy nobody listens on.
# Usage: tests/dist.sh dist/s3wal-VERSION-src.tar.gz
set -euo pipefail

archive=$(realpath "$1")
scratch=$(mktemp -d "${TMPDIR:-/tmp}/s3wal-dist.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
tar -xzf "$archive" -C "$scratch"
src=$(echo "$scratch"/s3wal-*-src)
mkdir "$scratch/cargo-home"

if unshare -n true 2>/dev/null; then
  offline=(unshare -n)
  how="no network (unshare -n)"
else
  proxy=http://127.0.0.1:9
  offline=(env CARGO_NET_OFFLINE=true CARGO_HTTP_PROXY=$proxy
    http_proxy=$proxy https_proxy=$proxy HTTP_PROXY=$proxy HTTPS_PROXY=$proxy)
  how="cargo offline, behind a proxy nobody listens on"
fi
echo "building $(basename "$archive") with $how" >&2
cd "$src"
SECONDS=0
"${offline[@]}" env CARGO_HOME="$scratch/cargo-home" CARGO_TARGET_DIR="$scratch/target" \
  cargo build --offline --locked --quiet
version=$("$scratch/target/debug/s3wal" --version)
echo "built in ${SECONDS}s: $version" >&2
commit=$(cat COMMIT)
case $version in
  "s3wal "*" (commit $commit, "*")") ;;
  *) echo "tests/dist.sh: --version does not name the archive's commit $commit" >&2; exit 1 ;;
esac
