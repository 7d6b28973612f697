#!/usr/bin/env bash
# deps.sh — install what iotflowd needs: Debian packages with apt, and the
# Python packages of the tests in a virtualenv. Idempotent and quick when
# nothing changed. Needs root (or sudo) the first time.
#
#   scripts/deps.sh build   what building and running need (`make run`)
#   scripts/deps.sh [all]   that, plus the servers, tools, compilers'
#                           runtimes and the Python virtualenv the tests and
#                           benchmarks use (`make test`, `sanitize`, `tsan`,
#                           `fuzz`, `bench`)
#   scripts/deps.sh check   links a program with each sanitizer runtime and
#                           libFuzzer, and imports the Python packages: the
#                           proof that `all` installed enough
#
# Python: one way everywhere. The tests and benchmarks run on .venv/bin/python
# (or $IOTFLOW_VENV), a virtualenv made from Debian's /usr/bin/python3 with
# the pinned packages of tests/requirements.txt from PyPI; never a pyenv
# interpreter, never Debian's python3-* libraries.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${IOTFLOW_VENV:-$ROOT/.venv}"
REQUIREMENTS="$ROOT/tests/requirements.txt"

BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libsodium-dev libsqlite3-dev uuid-dev
  libpq-dev libhiredis-dev libmongoc-dev
  libcmocka-dev
)
# gcc brings its sanitizer runtimes (libasan, libubsan, libtsan through
# libgcc-12-dev), clang does not: libFuzzer and clang's ASan/UBSan live in
# libclang-rt-dev (only recommended by clang, so --no-install-recommends
# leaves it out), and llvm's llvm-symbolizer turns a fuzz crash's addresses
# into file:line.
TEST_PACKAGES=(
  postgresql redis-server
  openjdk-17-jre-headless maven
  clang libclang-rt-dev llvm
  python3 python3-venv
  prometheus # promtool and the server that scrapes GET /metrics in tests/api
  wrk curl
  # The dashboard's browser test (tests/browser): Playwright drives
  # Debian's Chromium; DejaVu makes the screenshots' text readable.
  chromium fonts-dejavu-core
  # MQTT: the command-line clients of the MQTT tests (tests/mqtt), and the
  # broker `make bench` measures the listener against (the ceiling).
  mosquitto-clients mosquitto
)
# Packages whose service must not start: Debian's prometheus starts a
# server on every interface (:9090) at install and at each boot, while the
# tests run their own on 127.0.0.1. They are installed with a policy-rc.d
# that answers 101 ("action forbidden": invoke-rc.d and deb-systemd-invoke
# then start nothing; one already there, as in Docker images, is kept), and
# their services are disabled for boots. --no-install-recommends leaves out
# prometheus-node-exporter. Debian's mosquitto would start a broker on
# :1883, the port `make run` gives iotflowd's MQTT listener; the benchmark
# runs its own on a free port.
NO_START_PACKAGES=(prometheus mosquitto)

log() { echo "deps.sh: $*" >&2; }

install_debian() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  CHANGED=1
  log "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >&2 || true
  local quiet=() plain=()
  for p in "${missing[@]}"; do
    if [[ " ${NO_START_PACKAGES[*]} " == *" $p "* ]]; then quiet+=("$p"); else plain+=("$p"); fi
  done
  [ ${#plain[@]} -eq 0 ] || $sudo apt-get install -y -q --no-install-recommends "${plain[@]}" >&2
  [ ${#quiet[@]} -eq 0 ] || install_without_start "${quiet[@]}"
}

install_without_start() {
  local policy=/usr/sbin/policy-rc.d made="" p
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# deps.sh: no service starts while it installs\nexit 101\n' |
      $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    made=1
  fi
  local rc=0
  $sudo apt-get install -y -q --no-install-recommends "$@" >&2 || rc=$?
  [ -z "$made" ] || $sudo rm -f "$policy"
  for p in "$@"; do
    if [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now "$p" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$p" ]; then
      # A policy-rc.d of the machine's own may have let it start: stop it.
      $sudo invoke-rc.d "$p" stop >/dev/null 2>&1 || $sudo "/etc/init.d/$p" stop >/dev/null 2>&1 || true
      $sudo update-rc.d "$p" disable >/dev/null 2>&1 || true
    fi
  done
  return $rc
}

# What the virtualenv was made from: the requirements and the interpreter.
venv_stamp() {
  { sha256sum <"$REQUIREMENTS"; /usr/bin/python3 -c 'import sys; print(sys.version)'; } |
    sha256sum | cut -d' ' -f1
}

# Remade from scratch when the stamp differs, so a package dropped from the
# requirements leaves too; the stamp is written last, so an interrupted run
# is redone next time.
install_venv() {
  local stamp
  stamp="$(venv_stamp)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.iotflow-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  CHANGED=1
  log "making the Python virtualenv $VENV from tests/requirements.txt"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
    -r "$REQUIREMENTS" >&2
  echo "$stamp" >"$VENV/.iotflow-stamp"
}

# Each probe builds and runs a one-line program the way the Makefile's
# targets build theirs; a missing runtime fails at link time.
check() {
  local dir rc=0 probe
  dir="$(mktemp -d)"
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return (int)(n && d[0] == 0); }\n' >"$dir/fuzz.c"
  printf 'int main(void) { return 0; }\n' >"$dir/main.c"
  while read -r name cc flags src run; do
    # shellcheck disable=SC2086 # flags are words
    if "$cc" $flags "$dir/$src" -o "$dir/$name" 2>"$dir/$name.log" && "$dir/$name" $run >/dev/null 2>&1; then
      log "ok: $name ($cc $flags)"
    else
      log "FAILED: $name ($cc $flags)"
      sed 's/^/    /' "$dir/$name.log" >&2
      rc=1
    fi
  done <<EOF
gcc_asan_ubsan gcc -fsanitize=address,undefined main.c
gcc_tsan gcc -fsanitize=thread main.c
clang_fuzzer clang -fsanitize=fuzzer,address,undefined fuzz.c -runs=10
EOF
  for probe in llvm-symbolizer mosquitto_pub mosquitto_sub; do
    command -v "$probe" >/dev/null || { log "FAILED: $probe not found"; rc=1; }
  done
  if "$VENV/bin/python" -c 'import pytest, requests, schemathesis, cassandra.cluster, paho.mqtt.client' 2>"$dir/py.log"; then
    log "ok: $VENV has the test packages"
  else
    log "FAILED: $VENV lacks test packages"
    sed 's/^/    /' "$dir/py.log" >&2
    rc=1
  fi
  if "$VENV/bin/python" -c 'import playwright.sync_api' 2>"$dir/pw.log" && [ -x /usr/bin/chromium ]; then
    log "ok: Playwright and /usr/bin/chromium for the browser test"
  else
    log "FAILED: the browser test needs Playwright in $VENV and /usr/bin/chromium"
    sed 's/^/    /' "$dir/pw.log" >&2
    rc=1
  fi
  rm -rf "$dir"
  return $rc
}

# After an install, `all` proves it installed enough (about a second).
CHANGED=0
case "${1:-all}" in
  build) install_debian "${BUILD_PACKAGES[@]}" ;;
  all)
    install_debian "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    install_venv
    [ "$CHANGED" -eq 0 ] || check
    ;;
  check) check ;;
  *) echo "usage: $0 [build|all|check]" >&2; exit 2 ;;
esac
