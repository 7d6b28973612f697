#!/usr/bin/env bash
# deps.sh — install every Debian package that building, testing and running
# iotflowd needs. Idempotent: installs only what is missing. Needs root (or
# sudo) the first time. Python tests use Debian's packages under
# /usr/bin/python3, never a pyenv or venv interpreter.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libsodium-dev libsqlite3-dev uuid-dev
  libpq-dev libhiredis-dev
  postgresql redis-server
  openjdk-17-jre-headless maven
  libcmocka-dev clang
  python3 python3-pytest python3-requests python3-cassandra
  wrk curl
)

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
