# The two commands a user runs are `make serve` and `make test`; both install what they need first.
JOBS ?= $(shell nproc)
MODEL ?= models/default
PRESET ?= release

.PHONY: setup build test test-asan serve default-model bench clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS)

test: build
	@ctest --preset $(PRESET) -j $(JOBS)

test-asan:
	@$(MAKE) --no-print-directory test PRESET=asan

default-model: build
	@bash scripts/default_model.sh $(MODEL)

serve: default-model
	@bash scripts/serve.sh $(MODEL)

bench: build
	@bash scripts/bench.sh

clean:
	rm -rf build build-asan
