#!/usr/bin/env bash
# services.sh — private database servers for iotflowd's tests and for a
# production-like local setup: no Docker, loopback only, data under
# .services/ (or $IOTFLOW_SERVICES_DIR).
#
#   scripts/services.sh start  postgres redis   # start (idempotent), print env
#   scripts/services.sh stop   postgres redis
#   scripts/services.sh status postgres redis
#   scripts/services.sh env    postgres redis   # print env of running servers
#
# `start` and `env` print shell assignments on stdout and everything else on
# stderr, so that  eval "$(scripts/services.sh start postgres redis)"
# points iotflowd at what was started (DATABASE_URL, REDIS_URL).
# Ports: $IOTFLOW_PG_PORT (55432), $IOTFLOW_REDIS_PORT (56379). A second set
# of servers runs beside the first with another IOTFLOW_SERVICES_DIR and
# other ports (the fault tests do that).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SERVICES_DIR="${IOTFLOW_SERVICES_DIR:-$ROOT/.services}"
PG_PORT="${IOTFLOW_PG_PORT:-55432}"
REDIS_PORT="${IOTFLOW_REDIS_PORT:-56379}"
PG_DB=iotflow
PG_USER=iotflow

log() { echo "services.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# A password made once per service and kept beside its data (mode 600).
secret_file() {
  local file="$1"
  if [ ! -s "$file" ]; then
    (umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

# ---------------------------------------------------------------- PostgreSQL
# PostgreSQL refuses to run as root: as root, the server runs as the
# `postgres` system user (created by the Debian package), which then owns
# the data directory; as anyone else, it runs as that user.
pg_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -x "$dir/pg_ctl" ] || die "PostgreSQL server binaries not found (run scripts/deps.sh)"
  echo "$dir"
}

pg_dir() { echo "$SERVICES_DIR/postgres"; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_url() {
  echo "postgresql://$PG_USER:$(secret_file "$(pg_dir)/password")@127.0.0.1:$PG_PORT/$PG_DB"
}

pg_running() {
  [ -f "$(pg_dir)/data/postmaster.pid" ] &&
    as_pg "$(pg_bindir)/pg_ctl" -D "$(pg_dir)/data" status >/dev/null 2>&1
}

pg_init() {
  local dir bin
  dir="$(pg_dir)"
  bin="$(pg_bindir)"
  mkdir -p "$dir/socket"
  secret_file "$dir/password" >/dev/null
  if [ "$(id -u)" -eq 0 ]; then
    # The server user must be able to reach its directory.
    chown postgres: "$dir" "$dir/socket"
    as_pg test -x "$dir" || die "user postgres cannot reach $dir; set IOTFLOW_SERVICES_DIR to a directory it can"
  fi
  chmod 700 "$dir/socket"
  log "initialising PostgreSQL in $dir/data"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
# iotflowd's private server (scripts/services.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$dir/socket'
max_connections = 100
shared_buffers = 128MB
log_min_messages = warning
EOF
}

# The application role owns its database but is not a superuser.
pg_create_role() {
  local dir bin pw
  dir="$(pg_dir)"
  bin="$(pg_bindir)"
  pw="$(secret_file "$dir/password")"
  as_pg "$bin/psql" -X -q -h "$dir/socket" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    >/dev/null <<EOF
CREATE ROLE $PG_USER LOGIN PASSWORD '$pw';
CREATE DATABASE $PG_DB OWNER $PG_USER;
EOF
}

start_postgres() {
  local dir bin fresh=0
  dir="$(pg_dir)"
  bin="$(pg_bindir)"
  if pg_running; then
    log "postgres already running on 127.0.0.1:$PG_PORT"
  else
    mkdir -p "$dir"
    [ -f "$dir/data/PG_VERSION" ] || { pg_init; fresh=1; }
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
      { tail -n 20 "$dir/server.log" >&2; die "postgres did not start"; }
    [ "$fresh" -eq 1 ] && pg_create_role
    log "postgres started on 127.0.0.1:$PG_PORT (data in $dir/data)"
  fi
  echo "export DATABASE_URL='$(pg_url)'"
}

stop_postgres() {
  if pg_running; then
    as_pg "$(pg_bindir)/pg_ctl" -D "$(pg_dir)/data" -m fast -w stop >/dev/null
    log "postgres stopped"
  else
    log "postgres not running"
  fi
}

status_postgres() {
  if pg_running; then echo "postgres: running on 127.0.0.1:$PG_PORT"; else echo "postgres: stopped"; return 1; fi
}

env_postgres() { pg_running && echo "export DATABASE_URL='$(pg_url)'"; }

# --------------------------------------------------------------------- Redis
redis_dir() { echo "$SERVICES_DIR/redis"; }

redis_url() { echo "redis://:$(secret_file "$(redis_dir)/password")@127.0.0.1:$REDIS_PORT/0"; }

redis_cli() {
  REDISCLI_AUTH="$(secret_file "$(redis_dir)/password")" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

redis_running() { redis_cli ping 2>/dev/null | grep -q PONG; }

start_redis() {
  local dir
  dir="$(redis_dir)"
  command -v redis-server >/dev/null || die "redis-server not found (run scripts/deps.sh)"
  if redis_running; then
    log "redis already running on 127.0.0.1:$REDIS_PORT"
  else
    mkdir -p "$dir"
    # Sessions and rate limits survive a restart of Redis (append-only
    # file, synced every second); everything else can be rebuilt.
    (umask 077; cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
requirepass $(secret_file "$dir/password")
dir $dir
pidfile $dir/redis.pid
logfile $dir/server.log
daemonize yes
save ""
appendonly yes
appendfsync everysec
maxmemory 512mb
maxmemory-policy volatile-lru
EOF
    )
    redis-server "$dir/redis.conf"
    for _ in $(seq 100); do redis_running && break; sleep 0.1; done
    redis_running || { tail -n 20 "$dir/server.log" >&2; die "redis did not start"; }
    log "redis started on 127.0.0.1:$REDIS_PORT"
  fi
  echo "export REDIS_URL='$(redis_url)'"
}

stop_redis() {
  if redis_running; then
    redis_cli shutdown >/dev/null 2>&1 || true
    for _ in $(seq 50); do redis_running || break; sleep 0.1; done
    log "redis stopped"
  else
    log "redis not running"
  fi
}

status_redis() {
  if redis_running; then echo "redis: running on 127.0.0.1:$REDIS_PORT"; else echo "redis: stopped"; return 1; fi
}

env_redis() { redis_running && echo "export REDIS_URL='$(redis_url)'"; }

# ---------------------------------------------------------------------- main
usage() {
  echo "usage: $0 start|stop|status|env postgres|redis..." >&2
  exit 2
}

[ $# -ge 2 ] || usage
action="$1"
shift
case "$action" in start | stop | status | env) ;; *) usage ;; esac
mkdir -p "$SERVICES_DIR"
rc=0
for service in "$@"; do
  case "$service" in
    postgres | postgresql) "${action}_postgres" || rc=1 ;;
    redis) "${action}_redis" || rc=1 ;;
    *) log "unknown service '$service' (postgres, redis)"; rc=2 ;;
  esac
done
exit "$rc"
