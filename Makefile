# The two commands a user needs: `make dev` and `make test`.
CARGO ?= cargo
DATA_DIR ?= .sluice-dev

.PHONY: dev test deps build lint fmt fuzz

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release -p sluice

dev: build
	./target/release/sluice dev --data-dir $(DATA_DIR)

# Incremental state doubles the target dir and a fresh CI clone never reuses it.
test: deps
	CARGO_INCREMENTAL=0 $(CARGO) build -p sluice
	CARGO_INCREMENTAL=0 $(CARGO) test --workspace --no-fail-fast
	FUZZ_SECONDS=30 FUZZ_PROFILE=quick FUZZ_SEED=1 scripts/fuzz.sh

# Every fuzz target for FUZZ_SECONDS (default 300) each; see scripts/fuzz.sh.
fuzz: deps
	scripts/fuzz.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
