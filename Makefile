# Entry points. Every target runs scripts/setup.sh first, which installs what is missing.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
VENV := .venv
PYTEST := $(VENV)/bin/pytest

# The unit tests also run under these sanitizer presets as part of `make test`
# (`make test SANITIZERS=` skips them).
SANITIZERS ?= asan-ubsan tsan

.PHONY: setup configure build test unit e2e demo bench fmt clean sanitizers

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

test: unit e2e sanitizers

sanitizers: setup
	@for p in $(SANITIZERS); do \
	  echo "== unit tests under $$p"; \
	  cmake --preset $$p >/dev/null && cmake --build build/$$p -j $(JOBS) && \
	  ctest --test-dir build/$$p --output-on-failure -j $(JOBS) || exit 1; \
	done

# make demo DEMO_ARGS='--seed 2' (scripts/demo.py --help: rate, seconds, KV blocks)
demo: build
	$(VENV)/bin/python scripts/demo.py $(DEMO_ARGS)

bench: build
	bash bench/run.sh

fmt:
	find src bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf build

# A short run of the scenario benchmarks (bench/scenarios/README.md) into build/bench-quick/,
# about 5 minutes: every scenario at one rate (two body sizes for the overhead) with Envoy
# round-robin, epp and the cheapest or best peer. The full runs (make bench) write bench/results/.
QUICK_ROUTERS := envoy-round-robin,epp-best,sglang-router
.PHONY: bench-quick
bench-quick: build
	$(VENV)/bin/python bench/scenarios/prefix_heavy.py --rates 32 --seconds 8 --routers $(QUICK_ROUTERS) --out build/bench-quick/prefix_heavy.md
	$(VENV)/bin/python bench/scenarios/multi_lora.py --rates 30 --seconds 8 --routers $(QUICK_ROUTERS) --out build/bench-quick/multi_lora.md
	$(VENV)/bin/python bench/scenarios/no_sharing.py --rates 7 --seconds 8 --routers $(QUICK_ROUTERS) --out build/bench-quick/no_sharing.md
	$(VENV)/bin/python bench/scenarios/streaming_cost.py --rates 8 --seconds 5 --routers $(QUICK_ROUTERS),epp-best-lean --out build/bench-quick/streaming_cost.md
	$(VENV)/bin/python bench/scenarios/router_overhead.py --sizes 2048,225280 --seconds 2 --warmup 0.5 --routers envoy-round-robin,epp-best,epp-best-lean,vllm-router-power-of-two --out build/bench-quick/router_overhead.md
