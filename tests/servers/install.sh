#!/usr/bin/env bash
# Install the real S3 servers used by the tests (see docs/test-servers.md).
# Idempotent: each step is skipped when its tool is already there.
# Usage: tests/servers/install.sh      (Ceph/curl steps need root, as in CI)
set -euo pipefail

TOOLS="${S3WAL_TOOLS:-$HOME/.cache/s3wal/tools}"

# s3s-fs: pinned to 0.14.1 because later versions need a newer rustc.
if [[ ! -x "$TOOLS/bin/s3s-fs" ]]; then
  # Another shell may be building it already; wait instead of racing it.
  while pgrep -f "cargo install s3s-fs" >/dev/null; do
    echo "waiting for a running 'cargo install s3s-fs'..." >&2
    sleep 10
  done
  if [[ ! -x "$TOOLS/bin/s3s-fs" ]]; then
    cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$TOOLS"
  fi
fi

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "$@"
}

# Ceph RGW: a one-node cluster needs the monitor, the OSD and the gateway.
if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null ||
  ! command -v ceph-osd >/dev/null; then
  apt_install radosgw ceph-mon ceph-osd
fi

# curl signs the bucket-creation request (--aws-sigv4) and probes readiness.
command -v curl >/dev/null || apt_install curl

echo "s3s-fs: $TOOLS/bin/s3s-fs"
echo "radosgw: $(command -v radosgw)"
