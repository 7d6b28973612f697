#!/usr/bin/env bash
# services.sh — private database servers for iotflowd's tests and for a
# production-like local setup: no Docker, loopback only, data under
# .services/ in the clone (or $IOTFLOW_SERVICES_DIR). As root, PostgreSQL
# runs as the `postgres` user; when that user cannot reach the clone (a
# clone under /root, mode 700), the data goes to
# /var/lib/iotflow-services/<hash of the clone's path> instead, the same
# directory for every call from that clone, and stderr says so.
#
#   scripts/services.sh start  postgres redis   # start (idempotent), print env
#   scripts/services.sh stop   postgres redis
#   scripts/services.sh status postgres redis
#   scripts/services.sh env    postgres redis   # print env of running servers
#   scripts/services.sh kill   cassandra3.2     # kill -9 one node (a crash)
#   scripts/services.sh nodetool cassandra3.2 repair KEYSPACE   # nodetool on one node
#
# Services: postgres, redis, cassandra (one node on 127.0.0.1), cassandra3
# (three nodes on 127.0.0.1, .2 and .3), cassandra3.N (its node N) and
# ferretdb (FerretDB, a MongoDB server on SQLite; built with Go >= 1.24).
#
# `start` and `env` print shell assignments on stdout and everything else on
# stderr, so that  eval "$(scripts/services.sh start postgres redis)"
# points iotflowd at what was started (DATABASE_URL, REDIS_URL,
# CASSANDRA_HOSTS, CASSANDRA3_HOSTS, MONGODB_URL). Ports: $IOTFLOW_PG_PORT
# (55432), $IOTFLOW_REDIS_PORT (56379), $IOTFLOW_CASSANDRA_PORT (59042; the
# 3-node cluster uses it + 100), $IOTFLOW_FERRETDB_PORT (57017). A second set
# of servers runs beside the first with another IOTFLOW_SERVICES_DIR and
# other ports (the fault tests do that).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG_PORT="${IOTFLOW_PG_PORT:-55432}"
REDIS_PORT="${IOTFLOW_REDIS_PORT:-56379}"
CASSANDRA_PORT="${IOTFLOW_CASSANDRA_PORT:-59042}"
FERRET_PORT="${IOTFLOW_FERRETDB_PORT:-57017}"
CASSANDRA_VERSION=5.0.8
PG_DB=iotflow
PG_USER=iotflow

log() { echo "services.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ------------------------------------------------------- the data directory
# The user the servers' data must be reachable by: PostgreSQL's (run as
# root, the server runs as `postgres`), or `nobody` before PostgreSQL is
# installed, so the choice does not change when it is.
server_user() { if id -u postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi; }

# Where the data lives, decided the same way on every call from one clone
# (start, stop, status and env must agree): $IOTFLOW_SERVICES_DIR if set;
# else .services in the clone, if the server user can get there; else a
# directory of this machine named after the clone's path.
choose_services_dir() {
  if [ -n "${IOTFLOW_SERVICES_DIR:-}" ]; then
    echo "$IOTFLOW_SERVICES_DIR"
  elif [ "$(id -u)" -ne 0 ] || runuser -u "$(server_user)" -- test -x "$ROOT" 2>/dev/null; then
    echo "$ROOT/.services"
  else
    echo "/var/lib/iotflow-services/$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)"
  fi
}

SERVICES_DIR="$(choose_services_dir)"

# Creates the data directory, reachable by the server users (not
# readable: each server's own directory below it is private to it).
make_services_dir() {
  if [ "$SERVICES_DIR" = "$ROOT/.services" ] || [ -n "${IOTFLOW_SERVICES_DIR:-}" ]; then
    mkdir -p "$SERVICES_DIR"
    return
  fi
  log "user $(server_user) cannot reach $ROOT; the servers' data is in $SERVICES_DIR" \
    "(IOTFLOW_SERVICES_DIR chooses another)"
  install -d -m 711 "$(dirname "$SERVICES_DIR")"
  install -d -m 711 "$SERVICES_DIR"
  [ -f "$SERVICES_DIR/clone" ] || echo "$ROOT" >"$SERVICES_DIR/clone" # whose data this is
}

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
    # from /, as the caller's directory may be out of that user's reach
    (cd / && runuser -u postgres -- "$@")
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

# ----------------------------------------------------------------- Cassandra
# Apache Cassandra from its Maven Central jars (no tarball): mvn fetches
# cassandra-all and its runtime dependencies once into .services/cassandra/lib;
# each node gets our own cassandra.yaml, logback.xml and JVM flags, and runs
# CassandraDaemon on Java 17. A node: $SERVICES_DIR/<cluster>/nodeN, address
# 127.0.0.N, the cluster's CQL port on every address, its own JMX port.
# PasswordAuthenticator with Cassandra's default superuser (cassandra /
# cassandra): these servers listen on loopback only and hold test data.
cass_home() { echo "$SERVICES_DIR/cassandra"; }

cass_java() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-amd64/bin/java "$(command -v java || true)"; do
    [ -x "$j" ] && { echo "$j"; return; }
  done
  die "Java 17 not found (run scripts/deps.sh)"
}

cass_fetch_jars() {
  local home lib
  home="$(cass_home)"
  lib="$home/lib"
  [ -f "$lib/.complete-$CASSANDRA_VERSION" ] && return
  command -v mvn >/dev/null || die "mvn not found (run scripts/deps.sh)"
  log "fetching Cassandra $CASSANDRA_VERSION and its dependencies from Maven Central"
  mkdir -p "$home"
  rm -rf "$lib"
  cat >"$home/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.iotflow</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  (cd "$home" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$lib" >&2) || die "mvn could not fetch Cassandra"
  touch "$lib/.complete-$CASSANDRA_VERSION"
}

# JPMS flags Cassandra needs on Java 17 (its jvm17-server.options, which is
# not in the jar), plus a few more packages it reflects into.
cass_jvm_module_flags() {
  local e o
  for e in java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi \
    java.rmi/sun.rmi.registry java.rmi/sun.rmi.server java.sql/java.sql java.base/java.lang.ref \
    jdk.unsupported/sun.misc jdk.compiler/com.sun.tools.javac.file jdk.attach/sun.tools.attach; do
    echo "--add-exports=$e=ALL-UNNAMED"
  done
  for o in java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref \
    java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module \
    java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal java.base/sun.nio.ch \
    java.base/java.io java.base/java.lang.reflect jdk.compiler/com.sun.tools.javac \
    java.base/java.lang java.base/java.util java.base/java.nio java.base/java.util.concurrent \
    java.base/java.util.concurrent.atomic java.base/java.util.concurrent.locks \
    java.base/java.lang.invoke java.base/sun.nio.fs java.base/java.security; do
    echo "--add-opens=$o=ALL-UNNAMED"
  done
}

# cluster → "<nodes> <CQL port> <storage port> <JMX base port>"
cass_layout() {
  case "$1" in
    cassandra) echo "1 $CASSANDRA_PORT $((CASSANDRA_PORT - 2042)) $((CASSANDRA_PORT - 1843))" ;;
    cassandra3) echo "3 $((CASSANDRA_PORT + 100)) $((CASSANDRA_PORT - 1942)) $((CASSANDRA_PORT - 1743))" ;;
    *) die "unknown Cassandra cluster '$1'" ;;
  esac
}

# Evenly spaced Murmur3 tokens, one per node.
cass_token() {
  case "$1:$2" in
    1:1 | 3:1) echo "-9223372036854775808" ;;
    3:2) echo "-3074457345618258603" ;;
    3:3) echo "3074457345618258602" ;;
  esac
}

cass_node_dir() { echo "$SERVICES_DIR/$1/node$2"; }

cass_write_config() {
  local cluster="$1" i="$2" nodes cql storage jmx dir
  read -r nodes cql storage jmx <<<"$(cass_layout "$cluster")"
  dir="$(cass_node_dir "$cluster" "$i")"
  mkdir -p "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/logs"
  cat >"$dir/cassandra.yaml" <<YAML
# iotflowd's private Cassandra node (scripts/services.sh)
cluster_name: iotflow-$cluster
num_tokens: 1
initial_token: $(cass_token "$nodes" "$i")
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
commitlog_sync: periodic
commitlog_sync_period: 10000ms
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage"
listen_address: 127.0.0.$i
rpc_address: 127.0.0.$i
storage_port: $storage
native_transport_port: $cql
auto_bootstrap: false
authenticator: PasswordAuthenticator
authorizer: AllowAllAuthorizer
# Throwaway test nodes: no snapshot on DROP or TRUNCATE (the default, true,
# hard-links every dropped table's files until someone clears them): the
# API tests drop a keyspace per namespace, about a hundred a run. A
# production node keeps the default.
auto_snapshot: false
YAML
  cat >"$dir/logback.xml" <<XML
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$dir/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
XML
}

cass_pid() { cat "$(cass_node_dir "$1" "$2")/pid" 2>/dev/null || true; }

cass_node_running() {
  local pid
  pid="$(cass_pid "$1" "$2")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Ready: the process lives, it logged the end of its start-up, and its CQL
# port accepts connections (the log line alone comes before the bind, which
# can still fail).
cass_node_ready() {
  local cql
  read -r _ cql _ <<<"$(cass_layout "$1")"
  cass_node_running "$1" "$2" &&
    grep -q "Startup complete" "$(cass_node_dir "$1" "$2")/logs/system.log" 2>/dev/null &&
    (exec 3<>"/dev/tcp/127.0.0.$2/$cql") 2>/dev/null
}

cass_start_node() {
  local cluster="$1" i="$2" nodes cql storage jmx dir heap=2g
  read -r nodes cql storage jmx <<<"$(cass_layout "$cluster")"
  dir="$(cass_node_dir "$cluster" "$i")"
  if cass_node_ready "$cluster" "$i"; then
    log "$cluster node $i already running on 127.0.0.$i:$cql"
    return
  fi
  cass_fetch_jars
  cass_write_config "$cluster" "$i"
  : >"$dir/logs/system.log"
  [ "$nodes" -gt 1 ] && heap=768m
  # shellcheck disable=SC2046 # one flag per line
  setsid nohup "$(cass_java)" -Xms256m "-Xmx$heap" -Xss256k -XX:+UseG1GC -ea -da:net.openhft... \
    -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true \
    -Dio.netty.tryReflectionSetAccessible=true $(cass_jvm_module_flags) \
    "-Dcassandra.config=file://$dir/cassandra.yaml" "-Dcassandra.storagedir=$dir" \
    "-Dcassandra.logdir=$dir/logs" "-Dlogback.configurationFile=$dir/logback.xml" \
    -Dcassandra-foreground=yes "-Dcassandra.jmx.local.port=$((jmx + i))" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.superuser_setup_delay_ms=0 \
    -cp "$(cass_home)/lib/*" org.apache.cassandra.service.CassandraDaemon \
    >"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  log "starting $cluster node $i on 127.0.0.$i:$cql"
  local deadline=$((SECONDS + 240))
  until cass_node_ready "$cluster" "$i"; do
    if ! cass_node_running "$cluster" "$i" || [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$dir/logs/system.log" "$dir/logs/stdout.log" >&2
      die "$cluster node $i did not start"
    fi
    sleep 0.5
  done
  log "$cluster node $i ready"
}

cass_stop_node() {
  local cluster="$1" i="$2" pid
  pid="$(cass_pid "$cluster" "$i")"
  if ! cass_node_running "$cluster" "$i"; then
    log "$cluster node $i not running"
    return
  fi
  kill "$pid"
  for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$(cass_node_dir "$cluster" "$i")/pid"
  log "$cluster node $i stopped"
}

# kill -9, as a crash: what the node-loss test does to one node.
cass_kill_node() {
  local cluster="$1" i="$2" pid
  pid="$(cass_pid "$cluster" "$i")"
  if ! cass_node_running "$cluster" "$i"; then
    log "$cluster node $i not running"
    return
  fi
  kill -9 "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$(cass_node_dir "$cluster" "$i")/pid"
  log "$cluster node $i killed"
}

# nodetool: the jar distribution has no bin/nodetool script, so this runs
# its class, org.apache.cassandra.tools.NodeTool, as that script would:
# same jars and JPMS flags, on the node's JMX port (local only, no
# authentication: -Dcassandra.jmx.local.port), warnings only on stderr,
# its history file in the node's directory rather than ~/.cassandra.
cass_nodetool() {
  local cluster i nodes cql storage jmx dir
  read -r cluster i <<<"$(cass_nodes_of "$1")"
  shift
  read -r nodes cql storage jmx <<<"$(cass_layout "$cluster")"
  dir="$(cass_node_dir "$cluster" "$i")"
  [ -f "$(cass_home)/lib/.complete-$CASSANDRA_VERSION" ] || die "Cassandra is not installed: start it first"
  cat >"$(cass_home)/nodetool-logback.xml" <<XML
<configuration>
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
XML
  # shellcheck disable=SC2046 # one flag per line
  "$(cass_java)" -Xmx256m $(cass_jvm_module_flags) "-Duser.home=$dir" \
    "-Dlogback.configurationFile=$(cass_home)/nodetool-logback.xml" \
    -cp "$(cass_home)/lib/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$((jmx + i))" "$@"
}

cass_hosts() {
  local nodes cql storage jmx i out=""
  read -r nodes cql storage jmx <<<"$(cass_layout "$1")"
  for i in $(seq "$nodes"); do out="$out${out:+,}127.0.0.$i:$cql"; done
  echo "$out"
}

cass_env_name() { if [ "$1" = cassandra ]; then echo CASSANDRA_HOSTS; else echo CASSANDRA3_HOSTS; fi; }

# "cassandra3.2" → "cassandra3 2"; "cassandra3" → one line per node.
cass_nodes_of() {
  local nodes _ i
  case "$1" in
    *.*) echo "${1%%.*} ${1#*.}" ;;
    *) read -r nodes _ <<<"$(cass_layout "$1")"
       for i in $(seq "$nodes"); do echo "$1 $i"; done ;;
  esac
}

start_cassandra() {
  local cluster i
  while read -r cluster i; do cass_start_node "$cluster" "$i"; done <<<"$(cass_nodes_of "$1")"
  echo "export $(cass_env_name "${1%%.*}")='$(cass_hosts "${1%%.*}")'"
}

stop_cassandra() {
  local cluster i
  while read -r cluster i; do cass_stop_node "$cluster" "$i"; done <<<"$(cass_nodes_of "$1")"
}

kill_cassandra() {
  local cluster i
  while read -r cluster i; do cass_kill_node "$cluster" "$i"; done <<<"$(cass_nodes_of "$1")"
}

status_cassandra() {
  local cluster i rc=0
  while read -r cluster i; do
    if cass_node_ready "$cluster" "$i"; then echo "$cluster node $i: running"
    else echo "$cluster node $i: stopped"; rc=1; fi
  done <<<"$(cass_nodes_of "$1")"
  return $rc
}

env_cassandra() {
  status_cassandra "${1%%.*}" >/dev/null &&
    echo "export $(cass_env_name "${1%%.*}")='$(cass_hosts "${1%%.*}")'"
}

# ------------------------------------------------------------------ FerretDB
# FerretDB 1.24 (the MongoDB wire protocol on SQLite) for the documents
# store's MongoDB backend: our own small Go program (scripts/ferretdb) that
# embeds FerretDB's library, built with the Go toolchain on first start and
# again whenever its sources change; the binary is kept beside the data.
# No authentication (FerretDB's SQLite handler accepts anonymous clients):
# it listens on loopback only and holds test data.
ferret_dir() { echo "$SERVICES_DIR/ferretdb"; }

ferret_url() { echo "mongodb://127.0.0.1:$FERRET_PORT/iotflow"; }

ferret_pid() { cat "$(ferret_dir)/pid" 2>/dev/null || true; }

# Running: its process lives and its port accepts connections.
ferret_running() {
  local pid
  pid="$(ferret_pid)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$FERRET_PORT") 2>/dev/null
}

ferret_go() {
  local go major minor
  go="$(command -v go || true)"
  [ -z "$go" ] && [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go
  [ -n "$go" ] || die "FerretDB is built from source: Go >= 1.24 is needed (go not found on PATH)"
  IFS=. read -r major minor _ <<<"$("$go" env GOVERSION | sed 's/^go//')"
  if [ "${major:-0}" -lt 1 ] || { [ "$major" -eq 1 ] && [ "${minor:-0}" -lt 24 ]; }; then
    die "FerretDB is built from source: Go >= 1.24 is needed ($go is $("$go" env GOVERSION))"
  fi
  echo "$go"
}

# Builds the binary unless the one there was built from the same sources.
ferret_build() {
  local dir src sum go
  dir="$(ferret_dir)"
  src="$ROOT/scripts/ferretdb"
  sum="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-16)"
  [ -x "$dir/bin/ferretdb" ] && [ "$(cat "$dir/bin/sources" 2>/dev/null)" = "$sum" ] && return
  go="$(ferret_go)"
  log "building FerretDB (scripts/ferretdb; modules from the Go module proxy on first build)"
  mkdir -p "$dir/bin"
  (cd "$src" && "$go" build -trimpath -o "$dir/bin/ferretdb.new" . >&2) || die "FerretDB did not build"
  mv "$dir/bin/ferretdb.new" "$dir/bin/ferretdb"
  echo "$sum" >"$dir/bin/sources"
}

start_ferretdb() {
  local dir
  dir="$(ferret_dir)"
  if ferret_running; then
    log "ferretdb already running on 127.0.0.1:$FERRET_PORT"
  else
    ferret_build
    mkdir -p "$dir/data"
    setsid nohup "$dir/bin/ferretdb" -listen "127.0.0.1:$FERRET_PORT" -data "$dir/data" \
      >>"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 100); do ferret_running && break; sleep 0.1; done
    ferret_running || { tail -n 20 "$dir/server.log" >&2; die "ferretdb did not start"; }
    log "ferretdb started on 127.0.0.1:$FERRET_PORT (data in $dir/data)"
  fi
  echo "export MONGODB_URL='$(ferret_url)'"
}

stop_ferretdb() {
  local pid
  pid="$(ferret_pid)"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    log "ferretdb not running"
    return
  fi
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$(ferret_dir)/pid"
  log "ferretdb stopped"
}

status_ferretdb() {
  if ferret_running; then echo "ferretdb: running on 127.0.0.1:$FERRET_PORT"; else echo "ferretdb: stopped"; return 1; fi
}

env_ferretdb() { ferret_running && echo "export MONGODB_URL='$(ferret_url)'"; }

# ---------------------------------------------------------------------- main
usage() {
  echo "usage: $0 start|stop|status|env postgres|redis|ferretdb|cassandra|cassandra3|cassandra3.N..." >&2
  echo "       $0 kill cassandra|cassandra3|cassandra3.N...   (kill -9, a crash)" >&2
  echo "       $0 nodetool cassandra|cassandra3.N ARGS...         (e.g. status, repair KEYSPACE)" >&2
  exit 2
}

# nodetool: one node, then nodetool's own arguments.
if [ "${1:-}" = nodetool ]; then
  [ $# -ge 3 ] || usage
  case "$2" in cassandra | cassandra3.[123]) ;; *) log "nodetool takes one node: cassandra or cassandra3.N"; exit 2 ;; esac
  make_services_dir
  node="$2"
  shift 2
  cass_nodetool "$node" "$@"
  exit
fi

[ $# -ge 2 ] || usage
action="$1"
shift
case "$action" in start | stop | status | env) ;; kill) ;; *) usage ;; esac
make_services_dir
rc=0
for service in "$@"; do
  case "$service" in
    postgres | postgresql) [ "$action" = kill ] && usage; "${action}_postgres" || rc=1 ;;
    redis) [ "$action" = kill ] && usage; "${action}_redis" || rc=1 ;;
    ferretdb) [ "$action" = kill ] && usage; "${action}_ferretdb" || rc=1 ;;
    cassandra | cassandra3 | cassandra3.[123]) "${action}_cassandra" "$service" || rc=1 ;;
    *) log "unknown service '$service' (postgres, redis, ferretdb, cassandra, cassandra3, cassandra3.N)"; rc=2 ;;
  esac
done
exit "$rc"
