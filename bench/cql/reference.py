"""bench/cql/reference.py — the cql_bench workload through the reference
driver: the DataStax Python driver (cassandra-driver from PyPI in .venv,
with its libev event loop and C extensions), same schema, same statements, same
keys, same window of requests in flight. Prints one JSON line with the
fields cql_bench prints.

    CASSANDRA_HOSTS=127.0.0.1:59042 .venv/bin/python reference.py [N=100000] [window=256] [connections=1]
"""
import json
import os
import sys
import threading
import time

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import RoundRobinPolicy

PAYLOAD = "x" * 64


def percentile(sorted_us, p):
    if not sorted_us:
        return 0.0
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * p))] / 1000.0


class Window:
    """Keeps `window` requests in flight: each completion submits the next,
    until n requests have completed."""

    def __init__(self, session, stmt, n, window, values_of):
        self.session, self.stmt, self.n, self.window = session, stmt, n, window
        self.values_of = values_of
        self.next = 0
        self.done = 0
        self.errors = 0
        self.lat_us = []
        self.lock = threading.Lock()
        self.finished = threading.Event()

    def submit(self):
        with self.lock:
            if self.next >= self.n:
                return
            i = self.next
            self.next += 1
        t0 = time.perf_counter_ns()
        future = self.session.execute_async(self.stmt, self.values_of(i))
        future.add_callbacks(self.on_done, self.on_error, callback_args=(t0, i),
                             errback_args=(t0,))

    def on_done(self, rows, t0, i):
        if self.values_of is read_values and len(rows) != 1:
            self.on_error(RuntimeError(f"key {i}: {len(rows)} rows"), t0)
            return
        self.complete(t0, ok=True)

    def on_error(self, exc, t0):
        self.complete(t0, ok=False)

    def complete(self, t0, ok):
        with self.lock:
            self.lat_us.append((time.perf_counter_ns() - t0) // 1000)
            self.done += 1
            if not ok:
                self.errors += 1
            if self.done >= self.n:
                self.finished.set()
                return
        self.submit()

    def run(self):
        t0 = time.perf_counter()
        for _ in range(min(self.window, self.n)):
            self.submit()
        self.finished.wait()
        secs = time.perf_counter() - t0
        lat = sorted(self.lat_us)
        return self.n / secs, percentile(lat, 0.50), percentile(lat, 0.99), self.errors


N_GLOBAL = [1]


def insert_values(i):
    return (i, 1700000000000 + i, i * 0.5, PAYLOAD)


def read_values(i):
    return ((i * 7919) % N_GLOBAL[0],)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    N_GLOBAL[0] = n
    hosts_env = os.environ.get("CASSANDRA_HOSTS")
    if not hosts_env:
        sys.exit('set CASSANDRA_HOSTS (eval "$(scripts/services.sh start cassandra)")')
    hosts = [h.rsplit(":", 1) for h in hosts_env.split(",")]
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(),
                               consistency_level=ConsistencyLevel.ONE, request_timeout=30)
    cluster = Cluster([h for h, _ in hosts], port=int(hosts[0][1]), protocol_version=4,
                      auth_provider=PlainTextAuthProvider(
                          os.environ.get("CASSANDRA_USER", "cassandra"),
                          os.environ.get("CASSANDRA_PASSWORD", "cassandra")),
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    if conns != 1:
        sys.exit("the Python driver opens one connection per host with protocol v4")
    session = cluster.connect()
    session.execute("CREATE KEYSPACE IF NOT EXISTS cql_bench WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS cql_bench.kv "
                    "(k int PRIMARY KEY, ts bigint, v double, payload text)")
    session.execute("TRUNCATE cql_bench.kv")
    insert = session.prepare("INSERT INTO cql_bench.kv (k, ts, v, payload) VALUES (?, ?, ?, ?)")
    select = session.prepare("SELECT ts, v, payload FROM cql_bench.kv WHERE k = ?")
    ins = Window(session, insert, n, window, insert_values).run()
    rd = Window(session, select, n, window, read_values).run()
    cluster.shutdown()
    import cassandra
    print(json.dumps({
        "client": f"python-driver {cassandra.__version__}", "hosts": hosts_env, "n": n,
        "window": window, "connections": conns,
        "insert_per_s": round(ins[0], 1), "insert_p50_ms": ins[1], "insert_p99_ms": ins[2],
        "read_per_s": round(rd[0], 1), "read_p50_ms": rd[1], "read_p99_ms": rd[2],
        "errors": ins[3] + rd[3]}))
    return 1 if ins[3] + rd[3] else 0


if __name__ == "__main__":
    sys.exit(main())
