# The two commands a user runs are `make serve` and `make test`; both install what they need first.
JOBS ?= $(shell nproc)
MODEL ?= assets/demo-model
PRESET ?= release

.PHONY: setup build test test-asan test-portable test-portable-kernels serve default-model bench clean setup-aarch64 build-aarch64 test-aarch64 build-fuzz test-fuzz fuzz

setup:
	@bash scripts/setup.sh

build: setup
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS)

# The release suite ends with a short libFuzzer run of every fuzz target (test-fuzz below).
test: build
	@ctest --preset $(PRESET) -j $(JOBS)
	@if [ "$(PRESET)" = release ]; then $(MAKE) --no-print-directory test-fuzz; fi

test-asan:
	@$(MAKE) --no-print-directory test PRESET=asan

# The same suite from a build for any x86-64 (no -march=native): the run-time kernel dispatch
# must give full-speed paths without the compiler targeting this CPU.
test-portable:
	@$(MAKE) --no-print-directory test PRESET=portable

# The kernel suites alone from the portable build (what CI runs: a kernel that only compiles or
# only dispatches under -march=native fails here in a minute, without a second full build).
test-portable-kernels: setup
	@cmake --preset portable >/dev/null
	@cmake --build --preset portable -j $(JOBS) --target kernels_tests
	@ctest --preset portable -j $(JOBS) -L kernels

default-model: build
	@bash scripts/default_model.sh $(MODEL)

serve: default-model
	@bash scripts/serve.sh $(MODEL)

bench: build
	@bash scripts/bench.sh

# aarch64: cross build with Debian's g++-aarch64-linux-gnu and arm64 libraries, tests under
# qemu-user (docs/kernels.md, "aarch64 / NEON"). test-aarch64 builds only the kernel, model and
# tokenizer test binaries and runs them (ctest preset aarch64).
AARCH64_TEST_TARGETS = kernels_tests model_tests tokenizer_tests

setup-aarch64:
	@bash scripts/setup_aarch64.sh

build-aarch64: setup-aarch64
	@cmake --preset aarch64 >/dev/null
	@cmake --build --preset aarch64 -j $(JOBS)

test-aarch64: setup-aarch64
	@cmake --preset aarch64 >/dev/null
	@cmake --build --preset aarch64 -j $(JOBS) --target $(AARCH64_TEST_TARGETS)
	@ctest --preset aarch64 -j $(JOBS)

# libFuzzer targets (tests/fuzz, docs/testing.md): clang with ASan + UBSan in build-fuzz.
# test-fuzz replays every seed corpus and fuzzes each target for FUZZ_SHORT_SECONDS; fuzz is the
# long run, FUZZ_SECONDS per target (FUZZ_TARGETS="fuzz_config ..." picks some).
FUZZ_SHORT_SECONDS ?= 20
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=

build-fuzz: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)

test-fuzz: build-fuzz
	@bash scripts/fuzz.sh --seconds $(FUZZ_SHORT_SECONDS) $(FUZZ_TARGETS)

fuzz: build-fuzz
	@bash scripts/fuzz.sh --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf build build-asan build-portable build-aarch64 build-fuzz
