# Entry points. Every target runs scripts/setup.sh first, which installs what is missing.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
VENV := .venv
PYTEST := $(VENV)/bin/pytest

.PHONY: setup configure build test unit e2e demo bench fmt clean sanitize

setup:
	@bash scripts/setup.sh

configure: setup
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then cmake --preset $(PRESET); fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

e2e: build
	EPP_E2E_REQUIRE_BINARY=1 $(PYTEST) -q tests/e2e

test: unit e2e

demo: build
	$(VENV)/bin/python scripts/demo.py

bench: build
	bash bench/run.sh

fmt:
	find src bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

# Sanitizer runs of the unit tests: make sanitize PRESET=asan-ubsan (or tsan).
sanitize: setup
	cmake --preset $(PRESET)
	cmake --build build/$(PRESET) -j $(JOBS)
	ctest --test-dir build/$(PRESET) --output-on-failure -j $(JOBS)

clean:
	rm -rf build
