# s3wal: build, demo, test, static binary, release archives. See README.md.
CARGO ?= cargo
STATIC_TARGET ?= x86_64-unknown-linux-gnu

.PHONY: build demo test lint static dist dist-src test-dist bench fuzz clean

build:
	$(CARGO) build --release --locked

# The seed's demo story against a throwaway local s3s-fs.
demo: build
	tests/servers/demo.sh $${CARGO_TARGET_DIR:-target}/release/s3wal

# Installs s3s-fs, the Ceph RGW packages and SeaweedFS if missing, starts
# the three servers, runs every test (unit, integration, doc) including
# those a plain `cargo test` skips as needing the servers, stops the servers;
# fails if the run left anything in its TMPDIR. Then builds the vendored
# source archive offline (test-dist).
test:
	tests/leaves-no-scratch.sh tests/servers/with-servers.sh $(CARGO) test --locked -- --include-ignored
	$(MAKE) test-dist

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

# dist/: s3wal-VERSION-x86_64-linux.tar.gz (the static binary, its man page
# and completions from docs/, README.md, LICENSE), s3wal-VERSION-src.tar.gz
# (dist-src) and SHA256SUMS of both. Archives list their files by name,
# owned by root, dated from the commit: the same tree gives the same bytes.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
DIST_BIN = dist/s3wal-$(VERSION)-x86_64-linux
DIST_SRC = dist/s3wal-$(VERSION)-src
TAR = tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$$(git log -1 --format=%ct)
dist: static dist-src
	rm -rf $(DIST_BIN) $(DIST_BIN).tar.gz
	mkdir -p $(DIST_BIN)/completions
	cp $${CARGO_TARGET_DIR:-target}/$(STATIC_TARGET)/release/s3wal docs/s3wal.1 README.md LICENSE $(DIST_BIN)/
	cp docs/completions/* $(DIST_BIN)/completions/
	$(TAR) -C dist -c $(notdir $(DIST_BIN)) | gzip -9n > $(DIST_BIN).tar.gz
	rm -rf $(DIST_BIN)
	cd dist && sha256sum $(notdir $(DIST_BIN)).tar.gz $(notdir $(DIST_SRC)).tar.gz > SHA256SUMS
	@ls -l dist && cat dist/SHA256SUMS

# The files git tracks, the commit they are (COMMIT, for --version), and
# every dependency vendored (`cargo vendor`, with the .cargo/config.toml
# that points cargo at it): builds with `cargo build --offline --locked`.
dist-src:
	rm -rf $(DIST_SRC) $(DIST_SRC).tar.gz
	mkdir -p $(DIST_SRC)/.cargo
	git ls-files -z | xargs -0 cp --parents -t $(DIST_SRC)
	git rev-parse --short=7 HEAD > $(DIST_SRC)/COMMIT
	cd $(DIST_SRC) && $(CARGO) vendor --locked --versioned-dirs vendor > .cargo/config.toml
	$(TAR) -C dist -c $(notdir $(DIST_SRC)) | gzip -9n > $(DIST_SRC).tar.gz
	rm -rf $(DIST_SRC)

# Builds dist-src's archive as an air-gapped machine would: network off, an
# empty CARGO_HOME, in debug (tests/dist.sh).
test-dist: dist-src
	tests/dist.sh $(DIST_SRC).tar.gz

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
	rm -rf dist
