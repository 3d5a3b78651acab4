# The two commands README.md promises: `make run` and `make test`.
CARGO ?= cargo
BIN := target/release/pushgateway

.PHONY: run build release test test-deps lint unit bench crash conformance clean

run: release
	./$(BIN)

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# What the tests need on a fresh Debian machine: a real Prometheus to scrape us, the
# official Python client to push, and the Go gateway to read the persistence files we
# write. Installed only when missing.
test-deps:
	@if ! command -v prometheus >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null \
			|| [ ! -x /usr/bin/prometheus-pushgateway ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus python3-prometheus-client prometheus-pushgateway >/dev/null; \
	fi
	@rustup component add rustfmt clippy >/dev/null 2>&1 || true

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

test: test-deps lint unit

# Side-by-side with the Go gateway when it is installed (apt-get install prometheus-pushgateway wrk).
BENCH_ARGS ?=
bench: release
	python3 tests/bench/bench.py $(BENCH_ARGS)

# The durable mode against kill -9, many times over (make test runs 3 rounds).
PGW_CRASH_ROUNDS ?= 25
crash:
	PGW_CRASH_ROUNDS=$(PGW_CRASH_ROUNDS) $(CARGO) test --test crash -- --nocapture

# Cross-check against the Go gateway's recorded answers (needs ../shared, not part of the repo).
conformance: release
	./tests/conformance.sh

clean:
	$(CARGO) clean
