# s3wal: build, demo, test, static binary. See README.md.
CARGO ?= cargo
STATIC_TARGET ?= x86_64-unknown-linux-gnu

.PHONY: build demo test lint static bench fuzz clean

build:
	$(CARGO) build --release --locked

# The seed's demo story against a throwaway local s3s-fs.
demo: build
	tests/servers/demo.sh target/release/s3wal

# Installs s3s-fs, the Ceph RGW packages and SeaweedFS if missing, starts
# the three servers, runs every test (unit, integration, doc) including
# those a plain `cargo test` skips as needing the servers, stops the servers;
# fails if the run left anything in its TMPDIR.
test:
	tests/leaves-no-scratch.sh tests/servers/with-servers.sh $(CARGO) test --locked -- --include-ignored

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --locked

# A statically linked, stripped, size-optimised release binary. Not
# position-independent, which saves 100 KB of relocations (ASLR of the
# binary's own code is the price), and without unwind tables, which a
# panic=abort binary never uses (static.ld says why: 300 KB).
static:
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static -C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-Wl,-T,$(CURDIR)/static.ld" \
	  $(CARGO) build --release --locked --target $(STATIC_TARGET)
	@ls -l $${CARGO_TARGET_DIR:-target}/$(STATIC_TARGET)/release/s3wal

# Time, requests and memory against a local s3s-fs, on loopback and through
# a delay line that adds a 20 ms round trip to every request
# (tests/bench/delay_line.rs), side by side with curl, aws CLI and rclone
# (installed from Debian if missing); prints a Markdown table (see README.md).
bench: build static
	S3WAL_SKIP_RGW=1 tests/servers/install.sh >/dev/null
	command -v rclone >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update && apt-get install -y --no-install-recommends rclone; } >/dev/null
	python3 tests/bench/bench.py $${CARGO_TARGET_DIR:-target}/release/s3wal \
	  $${CARGO_TARGET_DIR:-target}/$(STATIC_TARGET)/release/s3wal

# Each cargo-fuzz target (record decoder, ListObjectsV2 and error XML) for
# FUZZ_SECONDS, with the nightly toolchain; installs cargo-fuzz if missing.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = record_decode list_xml error_xml
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	for target in $(FUZZ_TARGETS); do \
	  $(CARGO) +nightly fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	$(CARGO) clean
