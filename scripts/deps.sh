#!/usr/bin/env bash
# deps.sh — install the Debian packages iotflowd needs. Idempotent: installs
# only what is missing. Needs root (or sudo) the first time.
#
#   scripts/deps.sh build   what building and running need (`make run`)
#   scripts/deps.sh [all]   that, plus the servers, tools and Python packages
#                           the tests and benchmarks use (`make test`)
#
# Python tests use Debian's packages under /usr/bin/python3, never a pyenv or
# venv interpreter.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libsodium-dev libsqlite3-dev uuid-dev
  libpq-dev libhiredis-dev
  libcmocka-dev
)
TEST_PACKAGES=(
  postgresql redis-server
  openjdk-17-jre-headless maven
  clang
  python3 python3-pytest python3-requests python3-cassandra
  wrk curl
)

case "${1:-all}" in
  build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  all) PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: $0 [build|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2 || true
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
