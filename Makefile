# iotflowd — the two promises: `make run` and `make test` work on a fresh
# Debian machine. Everything else is a building block of those two.
PYTHON      ?= /usr/bin/python3
BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
JOBS        ?= $(shell nproc)
IOTFLOW_DATA_DIR ?= ./data

.PHONY: all deps build run test test-c test-api sanitize bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Starts iotflowd on the embedded stores (port 5000 unless IOTFLOW_PORT says
# otherwise). Without IOTFLOW_ADMIN_TOKEN a random one is generated and shown.
run: build
	@mkdir -p "$(IOTFLOW_DATA_DIR)"
	@if [ -z "$$IOTFLOW_ADMIN_TOKEN" ]; then \
	  IOTFLOW_ADMIN_TOKEN=$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'); \
	  echo "IOTFLOW_ADMIN_TOKEN not set; generated one for this run: $$IOTFLOW_ADMIN_TOKEN"; \
	  export IOTFLOW_ADMIN_TOKEN; \
	  IOTFLOW_DATA_DIR="$(IOTFLOW_DATA_DIR)" exec $(BUILD_DIR)/iotflowd; \
	else \
	  IOTFLOW_DATA_DIR="$(IOTFLOW_DATA_DIR)" exec $(BUILD_DIR)/iotflowd; \
	fi

test: build
	@$(MAKE) --no-print-directory test-c test-api BIN_DIR=$(BUILD_DIR)

BIN_DIR ?= $(BUILD_DIR)
test-c:
	@cd $(BIN_DIR) && ctest --output-on-failure -j $(JOBS)

test-api:
	@IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd $(PYTHON) -m pytest -q tests/api

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DIOT_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) --no-print-directory test-c test-api BIN_DIR=$(ASAN_DIR)

bench: build
	@$(PYTHON) bench/run.py --binary $(BUILD_DIR)/iotflowd

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
