# The two commands README.md promises: `make run` and `make test`.
CARGO ?= cargo
BIN := target/release/pushgateway

.PHONY: run build release test check test-deps lint unit release-tests bench crash abuse conformance dist dist-deps deb-test clean fuzz fuzz-build fuzz-smoke mutants

run: release
	./$(BIN)

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# What the tests need on a fresh Debian machine: a real Prometheus to scrape us, the
# official Python client to push, the Go gateway to read the persistence files we
# write and to compare framing answers with, headless Chromium with chromedriver for the
# web UI, nginx to proxy, iproute2 for a network namespace, systemd-socket-activate,
# curl and gzip. Installed only when missing.
test-deps:
	@for t in prometheus prometheus-pushgateway chromedriver nginx ip systemd-socket-activate curl gzip; do \
		command -v $$t >/dev/null 2>&1 || missing=1; done; \
	/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || missing=1; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus python3-prometheus-client prometheus-pushgateway chromium chromium-driver \
			nginx iproute2 systemd curl gzip >/dev/null; \
	fi
	@rustup component add rustfmt clippy >/dev/null 2>&1 || true

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# make test-deps installed every outside program: here a missing one fails its test
# (a bare `cargo test` skips such tests, one SKIPPED line each on stderr).
unit:
	PGW_REQUIRE_TOOLS=1 $(CARGO) test

# The integration tests and the crash test again against the binary that ships: the
# release profile (LTO, opt-level s, panic = abort).
release-tests:
	PGW_REQUIRE_TOOLS=1 $(CARGO) test --release --test it --test crash

# Every test: lint, unit and integration tests (debug and release), then the packages end to end.
test: check release-tests fuzz-smoke deb-test

# The quick loop: everything but the packages.
check: test-deps lint unit

# Side-by-side with the Go gateway when it is installed (apt-get install prometheus-pushgateway wrk).
BENCH_ARGS ?=
bench: release
	python3 tests/bench/bench.py $(BENCH_ARGS)

# The durable mode against kill -9, many times over (make test runs 6 rounds).
PGW_CRASH_ROUNDS ?= 25
crash:
	PGW_CRASH_ROUNDS=$(PGW_CRASH_ROUNDS) $(CARGO) test --release --test crash -- --nocapture

# The HTTP edge under abuse, with 20 SIGTERM rounds and every figure printed (make test
# runs the same cases with 3 rounds).
PGW_ABUSE_ROUNDS ?= 20
abuse:
	PGW_REQUIRE_TOOLS=1 PGW_ABUSE_ROUNDS=$(PGW_ABUSE_ROUNDS) $(CARGO) test --release --test abuse -- --nocapture

# Mutation testing (cargo-mutants, installed from crates.io when missing; a tool, not a
# dependency) of the modules whose tests must catch every change. A survivor is killed by
# a new test or excluded, with its reason, in .cargo/mutants.toml. Each module is judged
# by the tests that can see it: the unit tests and tests/it, and for the store and
# persistence also the crash test (a daemon killed mid-write); the browser test of the UI
# and the tutorial's (a Python client and Prometheus, the slowest) are skipped: what they
# reach of these modules the in-process tests reach too. One report per module, in
# mutants.out/<module>/mutants.out/. MUTANTS_MODULES chooses the modules; MUTANTS_ARGS
# adds options (-j 2, --iterate, -F <regex>).
MUTANTS_MODULES ?= store persist parse proto grouping
MUTANTS_ARGS ?=
MUTANTS_store := --file 'src/store/*.rs'
MUTANTS_persist := --file 'src/persist/*.rs' --file 'src/persist/journal/*.rs'
MUTANTS_parse := --file 'src/wire/parse/*.rs'
MUTANTS_proto := --file 'src/wire/proto/*.rs'
MUTANTS_grouping := --file src/model/grouping.rs
# The test binaries, and for persistence only the tests that load, write or replay files
# (the lib's persist::, tests/it's persistence::, recovery:: and writes::, the crash test).
MUTANTS_TESTS_store := --lib --test it --test crash
MUTANTS_TESTS_persist := --lib --test it --test crash
MUTANTS_FILTER_persist := persist recovery:: writes:: kill_9
mutants:
	@command -v cargo-mutants >/dev/null 2>&1 || $(CARGO) install --locked cargo-mutants
	st=0; $(foreach m,$(MUTANTS_MODULES),mkdir -p mutants.out/$(m) && $(CARGO) mutants --no-shuffle --exclude '*/tests.rs' --output mutants.out/$(m) $(MUTANTS_ARGS) $(MUTANTS_$(m)) -- $(or $(MUTANTS_TESTS_$(m)),--lib --test it) -- --skip ui:: --skip tutorial:: $(MUTANTS_FILTER_$(m)) || st=1;) exit $$st

# Cross-check against the Go gateway's recorded answers (needs ../shared, not part of the repo).
conformance: release
	./tests/conformance.sh

# Static release binaries (musl: smallest binary and RSS, no glibc to match; see
# packaging/README.md for the measurement) and .deb packages, into dist/.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
DEB_VERSION := $(VERSION)-1
AMD64 := target/x86_64-unknown-linux-musl/release/pushgateway
ARM64 := target/aarch64-unknown-linux-musl/release/pushgateway

dist-deps:
	@rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null 2>&1 || \
		rustup target list --installed | grep -q aarch64-unknown-linux-musl
	@for t in lintian debootstrap qemu-aarch64-static update-binfmts systemd-nspawn curl; do \
		command -v $$t >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends lintian debootstrap qemu-user-static binfmt-support systemd-container curl >/dev/null; fi

dist: dist-deps
	$(CARGO) build --release --target x86_64-unknown-linux-musl
	$(CARGO) build --release --target aarch64-unknown-linux-musl
	rm -rf dist && mkdir -p dist
	cp $(AMD64) dist/pushgateway-$(VERSION)-linux-amd64
	cp $(ARM64) dist/pushgateway-$(VERSION)-linux-arm64
	packaging/build-deb.sh amd64 $(AMD64) $(DEB_VERSION) dist
	packaging/build-deb.sh arm64 $(ARM64) $(DEB_VERSION) dist $(AMD64)
	@ls -l dist

# The packages installed and run on Debian bullseye (glibc 2.31, as Ubuntu 20.04).
deb-test: dist
	packaging/deb-test.sh dist

clean:
	$(CARGO) clean
	rm -rf dist

# Coverage-guided fuzzing of the four decoders of untrusted bytes (tests/fuzz), with
# libFuzzer on the stable toolchain. `make fuzz` runs each target FUZZ_SECONDS (the
# corpus grows in target/fuzz/corpus); `make fuzz-smoke` (part of `make test`) a few
# seconds each. A crash is written to target/fuzz/artifacts/<target>/ and fails the run.
FUZZ_TARGETS = text protobuf gob compressed
FUZZ_SECONDS ?= 600
FUZZ_HOST = $(shell rustc -vV | sed -n 's/host: //p')
FUZZ_BIN = target/fuzz/$(FUZZ_HOST)/release
FUZZ_RUSTFLAGS = -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks

fuzz-build:
	cd tests/fuzz && CARGO_TARGET_DIR=$(CURDIR)/target/fuzz RUSTFLAGS="$(FUZZ_RUSTFLAGS)" \
		$(CARGO) build --release --target $(FUZZ_HOST)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz/corpus/$$t target/fuzz/artifacts/$$t; \
		$(FUZZ_BIN)/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=target/fuzz/artifacts/$$t/ target/fuzz/corpus/$$t tests/fuzz/seeds/$$t \
			> target/fuzz/$$t.log 2>&1; rc=$$?; \
		echo "fuzz $$t, $(FUZZ_SECONDS) s: $$(grep -E '^#[0-9]+' target/fuzz/$$t.log | tail -1)"; \
		grep -E '^stat::number_of_executed_units' target/fuzz/$$t.log; \
		if [ $$rc -ne 0 ]; then tail -40 target/fuzz/$$t.log; echo "fuzz $$t failed: see target/fuzz/artifacts/$$t"; exit 1; fi; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10
