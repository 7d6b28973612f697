# iotflowd — the two promises: `make run` and `make test` work on a fresh
# Debian machine. Everything else is a building block of those two.
# The tests' and benchmarks' Python: a virtualenv that scripts/deps.sh makes
# from Debian's python3 and tests/requirements.txt (pinned, from PyPI).
export IOTFLOW_VENV ?= $(CURDIR)/.venv
PYTHON      ?= $(IOTFLOW_VENV)/bin/python
BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
TSAN_DIR    ?= build-tsan
FUZZ_DIR    ?= build-fuzz
# Per fuzz target: seven targets, 84 s in `make test`.
FUZZ_SECONDS ?= 12
JOBS        ?= $(shell nproc)
IOTFLOW_DATA_DIR ?= ./data

.PHONY: all deps build run test test-c test-api test-mqtt test-browser test-api-servers test-spec services fuzz sanitize tsan bench bench-cql bench-mqtt clean

# The servers the tests use beside the embedded stores (scripts/services.sh).
TEST_SERVICES ?= postgres redis cassandra cassandra3 ferretdb
# Starts them (idempotent) and exports DATABASE_URL, REDIS_URL,
# CASSANDRA_HOSTS, CASSANDRA3_HOSTS and MONGODB_URL. A server
# that does not start stops the target here (eval "$$(…)" alone would hide
# the failure and the tests would quietly skip what needs it).
WITH_SERVICES = svc_env="$$(scripts/services.sh start $(TEST_SERVICES))" && eval "$$svc_env" &&

all: build

# `make run` needs only what builds and runs iotflowd; everything else
# wants the test servers and tools too.
DEPS ?= all
deps:
	@scripts/deps.sh $(DEPS)

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Starts iotflowd on the embedded stores (port 5000 unless IOTFLOW_PORT says
# otherwise), with MQTT on 1883 (IOTFLOW_MQTT_PORT; 0 turns it off). Without
# IOTFLOW_ADMIN_TOKEN a random one is generated and shown.
run: DEPS = build
run: build
	@mkdir -p "$(IOTFLOW_DATA_DIR)"
	@if [ -z "$$IOTFLOW_ADMIN_TOKEN" ]; then \
	  IOTFLOW_ADMIN_TOKEN=$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'); \
	  echo "IOTFLOW_ADMIN_TOKEN not set; generated one for this run: $$IOTFLOW_ADMIN_TOKEN"; \
	  export IOTFLOW_ADMIN_TOKEN; \
	  IOTFLOW_DATA_DIR="$(IOTFLOW_DATA_DIR)" IOTFLOW_MQTT_PORT="$${IOTFLOW_MQTT_PORT-1883}" \
	    exec $(BUILD_DIR)/iotflowd; \
	else \
	  IOTFLOW_DATA_DIR="$(IOTFLOW_DATA_DIR)" IOTFLOW_MQTT_PORT="$${IOTFLOW_MQTT_PORT-1883}" \
	    exec $(BUILD_DIR)/iotflowd; \
	fi

# Every test: the C suites (the contract suites on every backend), then the
# black-box API suite three times — on the embedded stores (then the MQTT
# suite and the dashboard's browser test, also embedded), on PostgreSQL +
# Redis (with the two-instance and fault tests), and on the full server
# stack (PostgreSQL, Redis, Cassandra, FerretDB) — the Cassandra node-loss
# test, the spec test and the fuzzers.
test: build
	@$(WITH_SERVICES) $(MAKE) --no-print-directory test-c test-api test-mqtt test-browser test-api-servers \
	  test-api-cassandra test-node-loss BIN_DIR=$(BUILD_DIR)
	@$(MAKE) --no-print-directory test-spec BIN_DIR=$(BUILD_DIR)
	@$(MAKE) --no-print-directory fuzz

services: deps
	@scripts/services.sh start $(TEST_SERVICES) >/dev/null

BIN_DIR ?= $(BUILD_DIR)
test-c:
	@cd $(BIN_DIR) && IOT_REGISTRY_URLS_EXTRA="$$DATABASE_URL" IOT_CACHE_URLS_EXTRA="$$REDIS_URL" \
	  IOT_DOCS_URLS_EXTRA="$$MONGODB_URL" \
	  IOT_TELEMETRY_URLS_EXTRA="$${CASSANDRA_HOSTS:+cassandra://cassandra:cassandra@$$CASSANDRA_HOSTS/iot_contract?replication=1}" \
	  IOT_COPY_TEST_TO="$${CASSANDRA_HOSTS:+cassandra://cassandra:cassandra@$$CASSANDRA_HOSTS/iot_copy?replication=1}" \
	  CASSANDRA_HOSTS="$$CASSANDRA_HOSTS" CASSANDRA3_HOSTS="$$CASSANDRA3_HOSTS" \
	  ctest --output-on-failure -j $(JOBS)

test-api:
	@echo "== API suite on the embedded stores"
	@IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd $(PYTHON) -m pytest -q tests/api

# The MQTT listener driven by real clients (paho-mqtt, Debian's
# mosquitto_pub/mosquitto_sub), on the embedded stores; its two-instance
# tests run on the PostgreSQL, Redis and FerretDB of scripts/services.sh
# when they are there (make test started them; standalone, `services.sh
# env` finds running ones and starts nothing), and skip otherwise.
test-mqtt:
	@echo "== MQTT suite on the embedded stores"
	@if [ -z "$$DATABASE_URL" ]; then eval "$$(scripts/services.sh env postgres redis ferretdb 2>/dev/null)"; fi; \
	  IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd IOTFLOW_TEST_MQTT_DATABASE_URL="$$DATABASE_URL" \
	  IOTFLOW_TEST_MQTT_REDIS_URL="$$REDIS_URL" IOTFLOW_TEST_MQTT_MONGODB_URL="$$MONGODB_URL" \
	  $(PYTHON) -m pytest -q tests/mqtt

# The dashboard in headless Chromium (Playwright), on the embedded stores;
# screenshots in tests/browser/out/.
test-browser:
	@echo "== dashboard in a browser (headless Chromium)"
	@IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd $(PYTHON) -m pytest -q tests/browser

# This run also covers the epoll event loop (the embedded one, the default poll).
test-api-servers:
	@echo "== API suite on PostgreSQL + Redis, HTTP on epoll"
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || \
	  { echo "test-api-servers: run it through 'make test' (needs DATABASE_URL and REDIS_URL)"; exit 1; }
	@IOTFLOW_HTTP_EPOLL=1 IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd IOTFLOW_TEST_DATABASE_URL="$$DATABASE_URL" \
	  IOTFLOW_TEST_REDIS_URL="$$REDIS_URL" $(PYTHON) -m pytest -q tests/api

# The third pass: the full server stack — registry on PostgreSQL, cache on
# Redis, telemetry on one Cassandra node (a keyspace per test server;
# services.sh's node uses Cassandra's default superuser, on loopback only),
# documents on FerretDB (the MongoDB wire protocol; a database per server).
test-api-cassandra:
	@echo "== API suite on PostgreSQL + Redis + Cassandra + FerretDB"
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" -a -n "$$CASSANDRA_HOSTS" -a -n "$$MONGODB_URL" || \
	  { echo "test-api-cassandra: run it through 'make test' (needs DATABASE_URL, REDIS_URL, CASSANDRA_HOSTS, MONGODB_URL)"; exit 1; }
	@IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd IOTFLOW_TEST_DATABASE_URL="$$DATABASE_URL" \
	  IOTFLOW_TEST_REDIS_URL="$$REDIS_URL" IOTFLOW_TEST_CASSANDRA="cassandra:cassandra@$$CASSANDRA_HOSTS" \
	  IOTFLOW_TEST_MONGODB_URL="$$MONGODB_URL" $(PYTHON) -m pytest -q tests/api

# kill -9 one node of the 3-node cluster under ingest load, restart it:
# nothing acknowledged lost or doubled, no 503 (tests/api/test_cassandra_node_loss.py).
test-node-loss:
	@echo "== Cassandra node loss (3 nodes, replication 3, QUORUM)"
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" -a -n "$$CASSANDRA3_HOSTS" || \
	  { echo "test-node-loss: run it through 'make test' (needs DATABASE_URL, REDIS_URL, CASSANDRA3_HOSTS)"; exit 1; }
	@IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd IOTFLOW_TEST_DATABASE_URL="$$DATABASE_URL" \
	  IOTFLOW_TEST_REDIS_URL="$$REDIS_URL" IOTFLOW_TEST_CASSANDRA3="cassandra:cassandra@$$CASSANDRA3_HOSTS" \
	  $(PYTHON) -m pytest -q -s tests/api/test_cassandra_node_loss.py

# The spec as a test: schemathesis (tests/requirements.txt) generates
# requests from docs/openapi.yaml and checks every answer against it, on
# the embedded stores, as a device, a user and the admin; zero failures
# (tests/spec/run_schemathesis.py). Bounded: SPEC_MAX_EXAMPLES cases per
# operation and phase, fixed SPEC_SEED; the four passes run two at a time
# (SPEC_JOBS), each on a server of its own: about 7 minutes on 2 cores.
SPEC_MAX_EXAMPLES ?= 10
SPEC_SEED ?= 20261206
test-spec:
	@echo "== spec test: schemathesis against docs/openapi.yaml"
	@IOTFLOWD=$(CURDIR)/$(BIN_DIR)/iotflowd $(PYTHON) tests/spec/run_schemathesis.py \
	  --max-examples $(SPEC_MAX_EXAMPLES) --seed $(SPEC_SEED)

# libFuzzer (clang) on every decoder of outside input, one target after the
# other, each from its committed seeds (tests/fuzz/seeds/<name>) for
# FUZZ_SECONDS: the CQL frame decoder, commit-log replay, the telemetry body
# parser, time expressions, the router, the shortest-reals JSON rewriter and
# the MQTT packet codec.
# New inputs go to a scratch
# corpus, crashes to $(FUZZ_DIR)/artifacts/<name>/. `make fuzz
# FUZZ_TARGETS=router FUZZ_SECONDS=300` runs one for longer.
FUZZ_TARGETS ?= cql_frame commit_log tm_message timerange router json_out mqtt_packet
fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOT_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS) --target $(FUZZ_TARGETS:%=%_fuzzer) >$(FUZZ_DIR)/build.log 2>&1 || \
	  { cat $(FUZZ_DIR)/build.log; exit 1; }
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts/$$t; \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  (cd $(FUZZ_DIR) && ./tests/$${t}_fuzzer -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=artifacts/$$t/ corpus/$$t $(CURDIR)/tests/fuzz/seeds/$$t >fuzz-$$t.log 2>&1) || \
	    { tail -n 60 $(FUZZ_DIR)/fuzz-$$t.log; echo "fuzz: $$t failed; reproduce with $(FUZZ_DIR)/tests/$${t}_fuzzer <artifact>"; exit 1; }; \
	  grep -E "^stat::number_of_executed_units" $(FUZZ_DIR)/fuzz-$$t.log; \
	done

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DIOT_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS)
	@$(WITH_SERVICES) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) --no-print-directory test-c test-api test-mqtt test-api-servers BIN_DIR=$(ASAN_DIR)

# The C tests, the API suite on the embedded stores and the MQTT suite under
# ThreadSanitizer: a request crosses the HTTP (or MQTT loop), ingest-writer
# and flusher threads; MQTT adds the cache's pub/sub thread.
tsan: deps
	@cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DIOT_TSAN=ON >/dev/null
	@cmake --build $(TSAN_DIR) -j $(JOBS)
	@TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(MAKE) --no-print-directory test-c test-api test-mqtt BIN_DIR=$(TSAN_DIR)

# HTTP: embedded, then PostgreSQL + Redis, then PostgreSQL + Redis +
# Cassandra telemetry (one node, started like the tests' servers) with the
# issue's goals beside its numbers; then the documents issue's goals
# (bench/docs.py: embedded, and documents on FerretDB); then our CQL client
# beside the reference driver on Cassandra (bench-cql); last the MQTT
# listener beside Mosquitto (bench-mqtt). A failed check in the first
# still runs the second; either fails the target.
bench: build
	@svc_env="$$(scripts/services.sh start postgres redis cassandra ferretdb)" && eval "$$svc_env" || exit 1; \
	  rc=0; $(PYTHON) bench/run.py --binary $(BUILD_DIR)/iotflowd || rc=1; \
	  $(PYTHON) bench/docs.py --binary $(BUILD_DIR)/iotflowd || rc=1; exit $$rc
	@$(MAKE) --no-print-directory bench-cql
	@$(MAKE) --no-print-directory bench-mqtt

bench-cql: build
	@svc_env="$$(scripts/services.sh start cassandra)" && eval "$$svc_env" && \
	  $(PYTHON) bench/cql/run.py --binary $(BUILD_DIR)/cql_bench

# QoS 1 publishing over MQTT: iotflowd (embedded stores) beside Mosquitto
# and HTTP single ingest, in alternating rounds (bench/README.md, "MQTT").
bench-mqtt: build
	@$(PYTHON) bench/mqtt.py --binary $(BUILD_DIR)/iotflowd

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR)
