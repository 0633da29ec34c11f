# s3wal: build, demo, test, static binary. See README.md.
CARGO ?= cargo
STATIC_TARGET ?= x86_64-unknown-linux-gnu

.PHONY: build demo test lint static clean

build:
	$(CARGO) build --release --locked

# The seed's demo story against a throwaway local s3s-fs.
demo: build
	tests/servers/demo.sh target/release/s3wal

# Installs s3s-fs and the Ceph RGW packages if missing, starts both servers,
# runs every test (unit, integration, doc), stops the servers.
test:
	tests/servers/with-servers.sh $(CARGO) test --locked

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

# A statically linked, stripped, size-optimised release binary.
static:
	RUSTFLAGS="-C target-feature=+crt-static" \
	  $(CARGO) build --release --locked --target $(STATIC_TARGET)
	@ls -l target/$(STATIC_TARGET)/release/s3wal

clean:
	$(CARGO) clean
