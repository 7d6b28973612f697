"""bench/run.py — load test of iotflowd with wrk, everything in one run.

Starts the bare responder (bench/bare.c, the ceiling) and iotflowd (embedded
stores, temporary data dir, fresh ports), registers a user and N devices,
pre-fills history, then drives each scenario with wrk over keep-alive
connections: the ceiling, reads (latest, 100- and 1000-row range queries),
ingest (single message, paced single message at a share of the single peak,
batch) and the older device scenarios. With DATABASE_URL and REDIS_URL
(scripts/services.sh) it measures the same server on PostgreSQL + Redis,
and with CASSANDRA_HOSTS too, with its telemetry on Cassandra beside the
issue's goals for that store. Checks that what wrk saw acknowledged is what
the store holds, prints tables and writes bench/results/<UTC date-time>.json
(machine, exact command, settings, commit, results, ratios, checks). See
bench/README.md.

Usage: .venv/bin/python bench/run.py [--binary build/iotflowd] [--duration 10] [--connections 32]
                                    [--threads 2] [--devices 100] [--batch-size 100] [--fsync]
                                    [--no-cassandra] ...
Exit status 1 when a check failed (non-2xx answers, socket errors, counts
that do not agree); the results file is written anyway.
"""
import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import resource
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
POINTS_PER_MESSAGE = 3  # temperature, humidity, pressure in every message
TICK = os.sysconf("SC_CLK_TCK")


# ---- small helpers ---------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, headers=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def wait_http(base, path, proc, what, seconds=20):
    for _ in range(int(seconds / 0.05)):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} at start")
        try:
            urllib.request.urlopen(base + path, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"{what} did not start")


def stop(proc, timeout=60):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_cpu_s(pid):
    """utime + stime of a live process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def threads_cpu_s(pid):
    """{tid: (name, utime + stime seconds)} of a live process's threads."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            out[int(tid)] = (head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / TICK)
        except (OSError, IndexError, ValueError):
            pass
    return out


def machine_cpu_s():
    """CPU seconds of the whole machine (all cores) from /proc/stat: total,
    busy, interrupts (irq + softirq: most of loopback TCP is softirq; with
    tick-based accounting it is also charged to the process it ran in) and
    steal (taken by the hypervisor)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]] + [0] * 10
    total = sum(v[:8])  # guest time is already counted in user
    return {"total": total / TICK, "busy": (total - v[3] - v[4]) / TICK,
            "irq": (v[5] + v[6]) / TICK, "steal": v[7] / TICK}


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def git(*a):
    try:
        return subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def build_of(binary):
    """The report's `iotflowd`: commit, whether tracked files differ from it,
    and the hash of the binary that ran."""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(dirty),
            "changed_files": len(dirty.splitlines()) if dirty else 0,
            "binary_sha256": sha256_file(binary)}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def iso_ms(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
    except (OSError, StopIteration):
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "memory_mb": mem_kb // 1024, "load_average_at_start": list(os.getloadavg()),
            "python": platform.python_version(), "wrk": wrk_version.strip()}


# ---- iotflowd ---------------------------------------------------------------

# Every server this run starts takes this admin token (iotflowd wants at
# least 16 bytes); the status details the checks read are the admin's.
ADMIN_TOKEN = secrets.token_hex(16)

# scripts/services.sh's Cassandra nodes keep Cassandra's default superuser
# (they listen on loopback only); BENCH_CASSANDRA_CREDENTIALS ("user:pass")
# names another.
CASSANDRA_CREDENTIALS = os.environ.get("BENCH_CASSANDRA_CREDENTIALS", "cassandra:cassandra")

def start_server(binary, data_dir, fsync, backends=None):
    """iotflowd on the embedded stores, or on the servers `backends` names
    (DATABASE_URL and REDIS_URL, IOTFLOW_TELEMETRY_URL for Cassandra,
    MONGODB_URL for the documents: bench/docs.py)."""
    port = free_port()
    env = dict(os.environ, IOTFLOW_PORT=str(port), IOTFLOW_HOST="127.0.0.1",
               IOTFLOW_DATA_DIR=data_dir, IOTFLOW_ADMIN_TOKEN=ADMIN_TOKEN,
               IOTFLOW_AUTH_RATE_LIMIT="0", IOTFLOW_DEVICE_RATE_LIMIT="0",
               IOTFLOW_LOG_LEVEL="warn", IOTFLOW_FSYNC="1" if fsync else "0")
    for k in ("DATABASE_URL", "REDIS_URL", "IOTFLOW_TELEMETRY_URL", "MONGODB_URL",
              "IOTFLOW_THREADS"):
        env.pop(k, None)  # the defaults: embedded stores in data_dir, 2 x CPUs threads
    env.update(backends or {})
    log = open(os.path.join(data_dir, "iotflowd.log"), "w")
    proc = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    # On Cassandra the start creates a keyspace and a dozen tables: schema
    # changes take seconds, more on a node that holds many keyspaces.
    wait_http(base, "/health", proc, "iotflowd", seconds=20 if not backends else 180)
    return proc, base


BENCH_USER = {"username": "bench", "password": "bench-password"}


def login(base):
    """The Bearer header of the user setup_devices registered."""
    token = call(base, "POST", "/api/v1/auth/login", BENCH_USER)[1]["token"]
    return {"Authorization": f"Bearer {token}"}


def start_bare(bare):
    """bench_bare, the ceiling, on a free loopback port: (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen([bare, str(port)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(base, "/", proc, "bench_bare")
    return proc, base


def setup_devices(base, n):
    call(base, "POST", "/api/v1/auth/register", {**BENCH_USER, "email": "bench@example.com"})
    auth = login(base)
    devices = []
    for i in range(n):
        d = call(base, "POST", "/api/v1/devices/register",
                 {"name": f"dev-{i}", "device_type": "sensor"}, auth)[1]["device"]
        devices.append((d["id"], d["api_key"]))
    return devices


def tm_status(base):
    """The store totals and ingest counters: admin-only details."""
    return call(base, "GET", "/api/v1/telemetry/status",
                headers={"Authorization": f"admin {ADMIN_TOKEN}"})[1]


def settle(base, timeout=30):
    """Waits until the ingest queue is empty and the count stops moving."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        s = tm_status(base)
        if s["ingest"]["queued"] == 0 and last is not None and s["total_messages"] == last:
            return s
        last = s["total_messages"]
        time.sleep(0.2)
    return tm_status(base)


def prefill(base, devices, per_device, now_ms):
    """per_device messages for every device via POST /telemetry/batch (1000
    a request), one a minute going back from 2 h ago: history for reads,
    older than anything the ingest scenarios send."""
    port = int(base.rsplit(":", 1)[1])
    jobs = []
    for dev_id, key in devices:
        for start in range(0, per_device, 1000):
            jobs.append((key, start, min(per_device, start + 1000)))
    failures = []
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not jobs:
                    break
                key, lo, hi = jobs.pop()
            msgs = [{"data": {"temperature": round(15 + (i % 100) * 0.1, 1), "humidity": 30 + i % 50,
                              "pressure": 980 + i % 60},
                     "timestamp": iso_ms(now_ms - 7_200_000 - i * 60_000)} for i in range(lo, hi)]
            conn.request("POST", "/api/v1/telemetry/batch", json.dumps(msgs),
                         {"X-API-Key": key, "Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 201:
                with lock:
                    failures.append((r.status, body[:200]))
        conn.close()

    t0 = time.time()
    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        sys.exit(f"pre-fill failed: {failures[:3]}")
    return time.time() - t0


def server_backends(cassandra=False):
    """A fresh namespace on the PostgreSQL and Redis that `make bench`
    started (scripts/services.sh exports DATABASE_URL and REDIS_URL): a
    schema of its own and a key prefix of its own; with `cassandra`, also
    a keyspace of the same name on the node in CASSANDRA_HOSTS (iotflowd
    creates it at start-up; drop_keyspace removes it). None without them."""
    db, redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    hosts = os.environ.get("CASSANDRA_HOSTS", "")
    if not db.startswith("postgres") or not redis.startswith("redis") or (cassandra and not hosts):
        return None
    name = f"bench_{int(time.time())}_{os.getpid()}" + ("_cass" if cassandra else "")
    subprocess.run(["psql", "-X", "-qAt", "-d", db, "-c", f"CREATE SCHEMA {name}"], check=True,
                   capture_output=True, timeout=30)
    sep = lambda url: "&" if "?" in url else "?"
    out = {"DATABASE_URL": f"{db}{sep(db)}options=-csearch_path%3D{name}",
           "REDIS_URL": f"{redis}{sep(redis)}prefix={name}:"}
    if cassandra:
        out["IOTFLOW_TELEMETRY_URL"] = \
            f"cassandra://{CASSANDRA_CREDENTIALS}@{hosts}/{name}?replication=1"
    return out


# ---- wrk --------------------------------------------------------------------

class Runner:
    def __init__(self, args, devices, t0_ms):
        self.args = args
        self.env = dict(os.environ, BENCH_DIR=HERE,
                        BENCH_DEVICES=",".join(f"{i}:{k}" for i, k in devices),
                        BENCH_THREADS=str(args.threads), BENCH_BATCH=str(args.batch_size),
                        BENCH_T0_MS=str(t0_ms))

    def wrk(self, url, script, duration, server_pid, extra_env=None, store_pid=None):
        cmd = ["wrk", "-t", str(self.args.threads), "-c", str(self.args.connections),
               "-d", f"{duration}s", "--timeout", "10s", "--latency",
               "-s", os.path.join(HERE, script), url]
        env = dict(self.env, **(extra_env or {}))
        srv0, kids0, m0 = proc_cpu_s(server_pid), children_cpu_s(), machine_cpu_s()
        thr0 = threads_cpu_s(server_pid)
        store0 = proc_cpu_s(store_pid) if store_pid else 0.0
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        srv1, kids1, m1 = proc_cpu_s(server_pid), children_cpu_s(), machine_cpu_s()
        thr1 = threads_cpu_s(server_pid)
        store = proc_cpu_s(store_pid) - store0 if store_pid else 0.0
        line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None)
        if out.returncode != 0 or line is None:
            sys.exit(f"wrk failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
        raw = json.loads(line.split(" ", 1)[1])
        secs = raw["duration_us"] / 1e6
        m = {k: m1[k] - m0[k] for k in m0}
        ncpu = os.cpu_count() or 1
        wall = m["total"] / ncpu
        srv, wrk_cpu = srv1 - srv0, kids1 - kids0
        p = raw["latency_us"]["percentiles"]
        errs = raw["errors"]
        res = {
            "requests": raw["requests"],
            "seconds": round(secs, 3),
            "requests_per_s": round(raw["requests"] / secs, 1),
            "ok_requests_per_s": round((raw["requests"] - raw["errors"]["status"]) / secs, 1),
            "p50_ms": p["50"] / 1000, "p75_ms": p["75"] / 1000, "p90_ms": p["90"] / 1000,
            "p99_ms": p["99"] / 1000, "p999_ms": p["99.9"] / 1000,
            "mean_ms": round(raw["latency_us"]["mean"] / 1000, 3),
            "max_ms": raw["latency_us"]["max"] / 1000,
            "non_2xx": errs["status"],
            "socket_errors": {k: errs[k] for k in ("connect", "read", "write", "timeout")},
            "generated": max(raw["generated"] - 1, 0),  # wrk calls request() once to check it
            "bytes_read": raw["bytes"],
            # CPU in cores (1.0 = one core busy for the whole run)
            "cpu_cores": {"server": round(srv / wall, 2), "wrk": round(wrk_cpu / wall, 2),
                          "irq": round(m["irq"] / wall, 2), "steal": round(m["steal"] / wall, 2),
                          "other": round(max(m["busy"] - m["steal"] - srv - wrk_cpu - store, 0)
                                         / wall, 2),
                          "idle": round((m["total"] - m["busy"]) / wall, 2)},
            "wrk_command": " ".join(shlex.quote(c) for c in cmd),
        }
        if store_pid:  # the database server (Cassandra), not in "other"
            res["cpu_cores"]["store"] = round(store / wall, 2)
        # the server's busiest threads (iotflowd names them: MHD-worker,
        # ingest-writer, tm-flusher)
        busiest = sorted(((t1 - thr0.get(tid, (n, 0.0))[1], n, tid)
                          for tid, (n, t1) in thr1.items()), reverse=True)
        res["cpu_cores"]["server_threads"] = [
            {"tid": tid, "name": n, "cores": round(c / wall, 2)} for c, n, tid in busiest[:6]
            if c / wall >= 0.01]
        res["in_flight_at_stop"] = max(res["generated"] - res["requests"], 0)
        return res


def paired_rounds(args, run, bare_base, bare_proc, base, proc):
    """The headline ratio again, robust to a noisy machine: `pairs` rounds of
    the ceiling then single ingest, pair_duration seconds each, back to back;
    the median of the rounds' ratios. Every acknowledged message is checked
    as in the main scenarios."""
    rounds = []
    for i in range(args.pairs):
        print(f"  paired round {i + 1} ...", end="", flush=True)
        c = run.wrk(bare_base + "/api/v1/telemetry", "ingest_single.lua", args.pair_duration,
                    bare_proc.pid)
        time.sleep(0.5)
        before = tm_status(base)
        s = run.wrk(base + "/api/v1/telemetry", "ingest_single.lua", args.pair_duration, proc.pid)
        per_message(s, 1)
        ingest_check(base, s, before)
        ratio = round(s["requests_per_s"] / c["requests_per_s"], 3)
        rounds.append({"ceiling": c, "ingest_single": s, "ratio": ratio})
        print(f" ceiling {c['requests_per_s']:.0f}, ingest {s['requests_per_s']:.0f} req/s, "
              f"ratio {ratio:.3f}", flush=True)
        time.sleep(0.5)
    ratios = sorted(r["ratio"] for r in rounds)
    median = ratios[len(ratios) // 2] if ratios else None
    return {"seconds_each": args.pair_duration, "rounds": rounds, "median_ratio": median}


def per_message(res, msgs_per_request):
    ok_rate = res["ok_requests_per_s"]  # 2xx answers only
    res["messages_per_request"] = msgs_per_request
    res["points_per_request"] = msgs_per_request * POINTS_PER_MESSAGE
    res["messages_per_s"] = round(ok_rate * msgs_per_request, 1)
    res["points_per_s"] = round(ok_rate * msgs_per_request * POINTS_PER_MESSAGE, 1)


def ingest_check(base, res, before):
    """What wrk saw acknowledged (201) must be in the store. Requests still in
    flight when wrk stopped may have been committed too (the server
    finishes what it has read), so stored - acknowledged must lie in
    [0, in_flight x messages per request]."""
    after = settle(base)
    stored = after["total_messages"] - before["total_messages"]
    mpr = res["messages_per_request"]
    acked = (res["requests"] - res["non_2xx"]) * mpr
    upper = acked + res["in_flight_at_stop"] * mpr
    res["check"] = {"acknowledged_messages": acked, "stored_messages": stored,
                    "in_flight_messages_at_stop": res["in_flight_at_stop"] * mpr,
                    "committed_by_pipeline": after["ingest"]["committed_messages"]
                    - before["ingest"]["committed_messages"],
                    "ok": acked <= stored <= upper}
    return after


# ---- the run ----------------------------------------------------------------

def programs(args):
    """(iotflowd, bench_bare): --binary and --bare (default: next to it) as
    absolute paths; exits unless both and wrk are there."""
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run scripts/deps.sh")
    binary = os.path.abspath(args.binary)
    bare = os.path.abspath(args.bare or os.path.join(os.path.dirname(binary), "bench_bare"))
    for b in (binary, bare):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: run `make build`")
    return binary, bare


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/iotflowd", help="iotflowd to measure")
    ap.add_argument("--bare", default=None,
                    help="the bare responder (default: bench_bare next to --binary)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    ap.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--devices", type=int, default=100, help="devices, round-robin over requests")
    ap.add_argument("--batch-size", type=int, default=100, help="messages per batch request")
    ap.add_argument("--prefill", type=int, default=2000,
                    help="history messages per device before the read scenarios")
    ap.add_argument("--pairs", type=int, default=3,
                    help="paired rounds of ceiling then single ingest, for a median ratio")
    ap.add_argument("--pair-duration", type=int, default=5, help="seconds per paired scenario")
    ap.add_argument("--pace", type=float, default=0.5,
                    help="paced single ingest: target rate as a share of the single peak")
    ap.add_argument("--fsync", action="store_true",
                    help="IOTFLOW_FSYNC=1: every commit fsynced (power-loss safe)")
    ap.add_argument("--no-extra", action="store_true",
                    help="skip the health, heartbeat and device-status scenarios")
    ap.add_argument("--no-cassandra", action="store_true",
                    help="skip the column with telemetry on Cassandra")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if not 1 <= args.batch_size <= 1000:
        sys.exit("--batch-size must be 1..1000")
    binary, bare = programs(args)

    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.time()
    info = machine()
    if info["load_average_at_start"][0] > 0.5:
        print(f"note: load average {info['load_average_at_start'][0]:.2f} at start: "
              "something else is using the CPUs; see cpu_cores.other per scenario", flush=True)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": info,
        "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        "cwd": os.getcwd(),
        "settings": {**vars(args), "binary": binary, "bare": bare,
                     "wrk_timeout_s": 10, "server_threads": 2 * (os.cpu_count() or 1),
                     "points_per_message": POINTS_PER_MESSAGE,
                     "durability": "fsync every commit (power-loss safe)" if args.fsync else
                                   "commit = in the WAL via write(2), no fsync (process-crash safe)"},
        "iotflowd": build_of(binary),
        "notes": [
            f"wrk and the server share the machine's {os.cpu_count()} CPUs over loopback; "
            "cpu_cores says who used them (other = processes outside this benchmark)",
            "latency is wrk's: from writing the request to reading the whole answer, "
            "corrected by wrk for coordinated omission; the paced scenario's delay is not in it",
            "ingest answers 201 only after the group commit that holds the message",
        ],
    }
    results = {}
    checks = []    # failures: exit status 1
    warnings = []  # worth a look, not a failure
    data_dir = tempfile.mkdtemp(prefix="iotflow-bench-")
    proc = bare_proc = None
    try:
        proc, base = start_server(binary, data_dir, args.fsync)
        devices = setup_devices(base, args.devices)
        now_ms = int(time.time() * 1000)
        run = Runner(args, devices, now_ms - 3_600_000)
        d = args.duration

        def scenario(name, url, script, pid, msgs=None, env=None, duration=None, check=False):
            print(f"  {name} ...", end="", flush=True)
            before = tm_status(base) if check else None
            res = run.wrk(url, script, duration or d, pid, env)
            if msgs:
                per_message(res, msgs)
            if check:
                ingest_check(base, res, before)
            results[name] = res
            print(f" {res['requests_per_s']:.0f} req/s", flush=True)
            time.sleep(0.5)
            return res

        # (b) the ceiling: same wrk settings and requests, on the bare responder
        bare_proc, bare_base = start_bare(bare)
        print(f"bench: {args.devices} devices, {args.connections} connections, "
              f"{args.threads} wrk threads, {d} s per scenario", flush=True)
        scenario("ceiling", bare_base + "/api/v1/telemetry", "ingest_single.lua", bare_proc.pid)
        scenario("ceiling_get", bare_base + "/api/v1/telemetry/0/latest", "latest.lua",
                 bare_proc.pid)

        # history for the reads, then (c) the reads
        secs = prefill(base, devices, args.prefill, now_ms)
        st = settle(base)
        expected = args.prefill * args.devices
        report["prefill"] = {"messages": expected, "seconds": round(secs, 2),
                             "messages_per_s": round(expected / secs, 1) if secs else None,
                             "stored": st["total_messages"], "ok": st["total_messages"] == expected}
        print(f"  prefill: {expected} messages in {secs:.1f} s", flush=True)
        if not report["prefill"]["ok"]:
            checks.append(f"prefill stored {st['total_messages']} of {expected} messages")
        dev_id, key = devices[0]
        sample = {}
        for name, path in (("latest", f"/api/v1/telemetry/{dev_id}/latest"),
                           ("range_100", f"/api/v1/telemetry/{dev_id}?start_time=-30d&limit=100"),
                           ("range_1000", f"/api/v1/telemetry/{dev_id}?start_time=-30d&limit=1000")):
            req = urllib.request.Request(base + path, headers={"X-API-Key": key})
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
            sample[name] = {"body_bytes": len(raw)}
            if name != "latest":
                rows, want = json.loads(raw)["count"], min(int(path.rsplit("=", 1)[1]), args.prefill)
                sample[name].update(rows=rows, expected=want)
                if rows != want:
                    checks.append(f"{name}: {rows} rows, expected {want}")
        report["read_samples"] = sample
        scenario("latest", base + "/api/v1/telemetry/latest", "latest.lua", proc.pid)
        scenario("range_100", base + "/api/v1/telemetry", "range.lua", proc.pid,
                 env={"BENCH_LIMIT": "100"})
        scenario("range_1000", base + "/api/v1/telemetry", "range.lua", proc.pid,
                 env={"BENCH_LIMIT": "1000"})

        # (a) ingest: single at the peak, paced at a share of it, batch
        single = scenario("ingest_single", base + "/api/v1/telemetry", "ingest_single.lua",
                          proc.pid, msgs=1, check=True)
        target = args.pace * single["requests_per_s"]
        paced = scenario("ingest_paced", base + "/api/v1/telemetry", "ingest_paced.lua", proc.pid,
                         msgs=1, env={"BENCH_RATE": f"{target:.1f}"}, check=True)
        paced["pacing"] = {"peak_requests_per_s": single["requests_per_s"], "share": args.pace,
                           "target_requests_per_s": round(target, 1),
                           "achieved_requests_per_s": paced["requests_per_s"],
                           "achieved_share_of_peak": round(paced["requests_per_s"]
                                                           / single["requests_per_s"], 3)}
        if abs(paced["requests_per_s"] / target - 1) > 0.05:
            warnings.append(f"paced: achieved {paced['requests_per_s']:.0f} req/s, "
                          f"target {target:.0f} (more than 5% off)")
        scenario("ingest_batch", base + "/api/v1/telemetry/batch", "ingest_batch.lua", proc.pid,
                 msgs=args.batch_size, check=True)
        report["paired"] = paired_rounds(args, run, bare_base, bare_proc, base, proc)
        stop(bare_proc)

        if not args.no_extra:
            scenario("health", base + "/health", "get.lua", proc.pid)
            scenario("heartbeat", base + "/api/v1/devices/heartbeat", "heartbeat.lua", proc.pid)
            scenario("device_status", base + "/api/v1/devices/status", "device_get.lua", proc.pid)

        final = settle(base)
        report["server_status_at_end"] = {"total_messages": final["total_messages"],
                                          "devices_with_data": final["devices_with_data"],
                                          "ingest": final["ingest"],
                                          "durable_fsync": final["durable_fsync"]}
        stop(proc)
        if proc.returncode != 0:
            checks.append(f"iotflowd exited with status {proc.returncode}")
        report["server_log_tail"] = log_tail(os.path.join(data_dir, "iotflowd.log"))
        report["store_check"] = store_check(
            sqlite_counts(data_dir), devices, args.prefill,
            list(results.values()) + [x["ingest_single"] for x in report["paired"]["rounds"]], final)
        if not report["store_check"]["ok"]:
            checks.append("store check: " + report["store_check"]["problem"])
    finally:
        stop(bare_proc)
        stop(proc)
        if proc and proc.returncode:
            print("iotflowd log:\n" + "\n".join(log_tail(os.path.join(data_dir, "iotflowd.log"))),
                  file=sys.stderr)
        shutil.rmtree(data_dir, ignore_errors=True)

    backends = server_backends()
    if backends:
        report["servers"] = servers_column(args, binary, backends, checks)
    else:
        print("no DATABASE_URL/REDIS_URL: the PostgreSQL + Redis column is skipped "
              "(`make bench` starts them)", flush=True)
    backends = None if args.no_cassandra else server_backends(cassandra=True)
    if backends:
        report["cassandra"] = cassandra_column(args, binary, backends, checks, warnings, results)
    elif not args.no_cassandra:
        print("no DATABASE_URL/REDIS_URL/CASSANDRA_HOSTS: the Cassandra column is skipped "
              "(`make bench` starts the servers)", flush=True)

    # ratios and checks
    def ratio(a, b):
        return round(results[a]["requests_per_s"] / results[b]["requests_per_s"], 3)
    report["ratios"] = {
        "ingest_single_vs_ceiling": ratio("ingest_single", "ceiling"),
        "ingest_single_vs_ceiling_paired_median": report["paired"]["median_ratio"],
        "latest_vs_ceiling": ratio("latest", "ceiling"),
        "latest_vs_ceiling_get": ratio("latest", "ceiling_get"),
        "ingest_batch_messages_vs_single_messages":
            round(results["ingest_batch"]["messages_per_s"]
                  / results["ingest_single"]["messages_per_s"], 2),
    }
    for name, r in list(results.items()) + [(f"paired round {i + 1} {k}", x[k])
                                            for i, x in enumerate(report["paired"]["rounds"])
                                            for k in ("ceiling", "ingest_single")]:
        if r["non_2xx"]:
            checks.append(f"{name}: {r['non_2xx']} non-2xx answers")
        if any(r["socket_errors"].values()):
            checks.append(f"{name}: socket errors {r['socket_errors']}")
        if "check" in r and not r["check"]["ok"]:
            c = r["check"]
            checks.append(f"{name}: wrk saw {c['acknowledged_messages']} messages acknowledged "
                          f"(+{c['in_flight_messages_at_stop']} in flight), "
                          f"the store gained {c['stored_messages']}")
    for name, r in results.items():
        if r["cpu_cores"]["other"] > 0.25:
            warnings.append(f"{name}: other processes used {r['cpu_cores']['other']:.2f} cores "
                            "during the run; its numbers are low")
    report["checks"] = {"ok": not checks, "problems": checks, "warnings": warnings}
    report["results"] = results
    report["total_seconds"] = round(time.time() - t_start, 1)

    print_table(report)
    if "servers" in report:
        print_servers(report)
    if "cassandra" in report:
        print_cassandra(report)
    finish(report, os.path.join(args.out_dir, started.strftime("%Y-%m-%dT%H%M%SZ") + ".json"),
           checks, warnings)


def finish(report, out, checks, warnings):
    """Writes the report to `out`, prints the warnings, and with failed
    checks a loud banner and exit status 1 (bench/docs.py too)."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"written {os.path.relpath(out)} ({report['total_seconds']:.0f} s)")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if checks:
        bar = "!" * 78
        print(f"\n{bar}\n!!! BENCHMARK CHECKS FAILED:", file=sys.stderr)
        for c in checks:
            print(f"!!!   {c}", file=sys.stderr)
        print(bar, file=sys.stderr)
        sys.exit(1)


def servers_column(args, binary, backends, checks):
    """The same ingest and read scenarios on iotflowd with its registry on
    PostgreSQL and its cache on Redis (telemetry stays embedded)."""
    print("bench: PostgreSQL + Redis", flush=True)
    data_dir = tempfile.mkdtemp(prefix="iotflow-bench-servers-")
    results = {}
    proc = None
    try:
        proc, base = start_server(binary, data_dir, args.fsync, backends)
        devices = setup_devices(base, args.devices)
        now_ms = int(time.time() * 1000)
        run = Runner(args, devices, now_ms - 3_600_000)
        prefill(base, devices, min(args.prefill, 200), now_ms)
        settle(base)
        for name, path, script, msgs, env in (
                ("latest", "/api/v1/telemetry/latest", "latest.lua", None, None),
                ("range_100", "/api/v1/telemetry", "range.lua", None, {"BENCH_LIMIT": "100"}),
                ("ingest_single", "/api/v1/telemetry", "ingest_single.lua", 1, None),
                ("ingest_batch", "/api/v1/telemetry/batch", "ingest_batch.lua", args.batch_size,
                 None),
                ("heartbeat", "/api/v1/devices/heartbeat", "heartbeat.lua", None, None),
                ("device_status", "/api/v1/devices/status", "device_get.lua", None, None)):
            print(f"  {name} ...", end="", flush=True)
            before = tm_status(base) if msgs else None
            res = run.wrk(base + path, script, args.duration, proc.pid, env)
            if msgs:
                per_message(res, msgs)
                ingest_check(base, res, before)
            results[name] = res
            print(f" {res['requests_per_s']:.0f} req/s", flush=True)
            time.sleep(0.5)
        stop(proc)
        if proc.returncode != 0:
            checks.append(f"servers: iotflowd exited with status {proc.returncode}")
    finally:
        stop(proc)
        if proc and proc.returncode:
            print("iotflowd log:\n" + "\n".join(log_tail(os.path.join(data_dir, "iotflowd.log"))),
                  file=sys.stderr)
        shutil.rmtree(data_dir, ignore_errors=True)
    for name, r in results.items():
        if r["non_2xx"] or any(r["socket_errors"].values()):
            checks.append(f"servers {name}: {r['non_2xx']} non-2xx, socket errors {r['socket_errors']}")
        if "check" in r and not r["check"]["ok"]:
            checks.append(f"servers {name}: acknowledged and stored counts differ: {r['check']}")
    return {"backends": "registry on PostgreSQL, cache on Redis (scripts/services.sh), "
                        "telemetry embedded", "results": results}


def print_servers(report):
    emb, srv = report["results"], report["servers"]["results"]
    print(f"\n{'PostgreSQL+Redis':<17}{'req/s':>9}{'msg/s':>10}{'p99 ms':>8}"
          f"{'embedded req/s':>16}{'ratio':>7}")
    for name, r in srv.items():
        base = emb.get(name, {}).get("requests_per_s")
        msg = f"{r['messages_per_s']:>10.0f}" if "messages_per_s" in r else f"{'':>10}"
        print(f"{name:<17}{r['requests_per_s']:>9.0f}{msg}{r['p99_ms']:>8.2f}"
              f"{base or 0:>16.0f}{(r['requests_per_s'] / base if base else 0):>7.2f}")


# ---- telemetry on Cassandra ----------------------------------------------------

# The goals for telemetry on Cassandra, printed beside its column:
# (what, scenario, field, comparison, goal, unit). GET latest's goal is a
# share of the embedded rate of the same run.
CASSANDRA_TARGETS = (
    ("single-message ingest", "ingest_single", "messages_per_s", ">=", 10_000, "msg/s"),
    ("batch ingest", "ingest_batch", "points_per_s", ">=", 150_000, "points/s"),
    ("p99 at half the single peak", "ingest_paced", "p99_ms", "<", 50, "ms"),
    ("GET latest / embedded", "latest", "requests_per_s", ">=", 0.8, "x embedded"),
    ("100-row history pages", "range_100", "requests_per_s", ">=", 5_000, "pages/s"),
)


def cassandra_targets(results, embedded):
    out = []
    for what, name, field, op, goal, unit in CASSANDRA_TARGETS:
        value = results.get(name, {}).get(field)
        if value is not None and unit == "x embedded":
            base = embedded.get(name, {}).get(field)
            value = round(value / base, 3) if base else None
        met = None if value is None else (value >= goal if op == ">=" else value < goal)
        out.append({"what": what, "scenario": name, "field": field, "value": value,
                    "goal": f"{op} {goal:,} {unit}".replace(">=", "≥"), "met": met})
    return out


def cql_connect():
    """A session (cassandra-driver, .venv) on the first node of
    CASSANDRA_HOSTS, for counting rows and dropping the keyspace."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster
    host, port = os.environ["CASSANDRA_HOSTS"].split(",")[0].rsplit(":", 1)
    user, password = CASSANDRA_CREDENTIALS.split(":", 1)
    cluster = Cluster([host], port=int(port), protocol_version=4,
                      auth_provider=PlainTextAuthProvider(user, password))
    session = cluster.connect()
    session.default_timeout = 120
    return cluster, session


def keyspace_of(backends):
    return backends["IOTFLOW_TELEMETRY_URL"].rsplit("/", 1)[1].split("?")[0]


def cassandra_counts(keyspace, devices, from_ms, to_ms):
    """(rows, {device_id: rows}) of device_data, counted partition by
    partition — every (device, UTC day) from from_ms to to_ms — with CQL,
    not through iotflowd (its totals are what this checks)."""
    cluster, session = cql_connect()
    try:
        count = session.prepare(f'SELECT COUNT(*) FROM "{keyspace}".device_data'
                                " WHERE device_id = ? AND day = ?")
        days = range(from_ms // 86_400_000, to_ms // 86_400_000 + 1)
        per_dev = {int(dev_id): sum(session.execute(count, (int(dev_id), day)).one()[0]
                                    for day in days) for dev_id, _ in devices}
    finally:
        cluster.shutdown()
    return sum(per_dev.values()), per_dev


def drop_keyspace(keyspace):
    """The run's keyspace goes at the end: a node holding many keyspaces
    answers schema changes slowly."""
    try:
        cluster, session = cql_connect()
        try:
            session.execute(f'DROP KEYSPACE IF EXISTS "{keyspace}"')
        finally:
            cluster.shutdown()
    except Exception as e:  # the results stand; say what is left behind
        print(f"could not drop keyspace {keyspace}: {e}", file=sys.stderr)


def pid_listening_on(port):
    """The process with a TCP socket listening on `port` (the Cassandra
    node, for its CPU), or None: /proc/net/tcp{,6} give the socket's inode,
    /proc/<pid>/fd the process holding it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        except OSError:
            pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def cassandra_column(args, binary, backends, checks, warnings, embedded):
    """The scenarios the issue sets goals for, on iotflowd with its
    telemetry on the one-node Cassandra of `make bench` (registry on
    PostgreSQL, cache on Redis, as in production): GET latest and 100-row
    history pages on the pre-filled history, then single ingest at the peak,
    paced at --pace of that peak, and batch ingest. Every scenario's
    acknowledged messages are checked against the store's totals; at the
    end the rows are counted with CQL, partition by partition."""
    keyspace = keyspace_of(backends)
    cass_port = int(os.environ["CASSANDRA_HOSTS"].split(",")[0].rsplit(":", 1)[1])
    store_pid = pid_listening_on(cass_port)
    print(f"bench: PostgreSQL + Redis + Cassandra (keyspace {keyspace}, replication 1)",
          flush=True)
    data_dir = tempfile.mkdtemp(prefix="iotflow-bench-cassandra-")
    results = {}
    out = {"backends": "registry on PostgreSQL, cache on Redis, telemetry on one Cassandra node "
                       "(scripts/services.sh), replication 1, consistency ONE",
           "keyspace": keyspace, "cassandra_pid_found": store_pid is not None}
    proc = None
    try:
        t0 = time.time()
        proc, base = start_server(binary, data_dir, args.fsync, backends)
        out["start_seconds"] = round(time.time() - t0, 2)
        devices = setup_devices(base, args.devices)
        now_ms = int(time.time() * 1000)
        run = Runner(args, devices, now_ms - 3_600_000)
        secs = prefill(base, devices, args.prefill, now_ms)
        st = settle(base)
        expected = args.prefill * args.devices
        out["prefill"] = {"messages": expected, "seconds": round(secs, 2),
                          "messages_per_s": round(expected / secs, 1) if secs else None,
                          "stored": st["total_messages"], "ok": st["total_messages"] == expected}
        print(f"  prefill: {expected} messages in {secs:.1f} s", flush=True)
        if not out["prefill"]["ok"]:
            checks.append(f"cassandra: prefill stored {st['total_messages']} of {expected}")

        def scenario(name, path, script, msgs=None, env=None):
            print(f"  {name} ...", end="", flush=True)
            before = tm_status(base) if msgs else None
            res = run.wrk(base + path, script, args.duration, proc.pid, env, store_pid)
            if msgs:
                per_message(res, msgs)
                ingest_check(base, res, before)
            results[name] = res
            print(f" {res['requests_per_s']:.0f} req/s", flush=True)
            time.sleep(0.5)
            return res

        scenario("latest", "/api/v1/telemetry/latest", "latest.lua")
        scenario("range_100", "/api/v1/telemetry", "range.lua", env={"BENCH_LIMIT": "100"})
        single = scenario("ingest_single", "/api/v1/telemetry", "ingest_single.lua", msgs=1)
        target = args.pace * single["requests_per_s"]
        paced = scenario("ingest_paced", "/api/v1/telemetry", "ingest_paced.lua", msgs=1,
                         env={"BENCH_RATE": f"{target:.1f}"})
        paced["pacing"] = {"peak_requests_per_s": single["requests_per_s"], "share": args.pace,
                           "target_requests_per_s": round(target, 1),
                           "achieved_requests_per_s": paced["requests_per_s"],
                           "achieved_share_of_peak": round(paced["requests_per_s"]
                                                           / single["requests_per_s"], 3)}
        if abs(paced["requests_per_s"] / target - 1) > 0.05:
            warnings.append(f"cassandra paced: achieved {paced['requests_per_s']:.0f} req/s, "
                            f"target {target:.0f} (more than 5% off)")
        scenario("ingest_batch", "/api/v1/telemetry/batch", "ingest_batch.lua",
                 msgs=args.batch_size)
        final = settle(base)
        out["server_status_at_end"] = {"total_messages": final["total_messages"],
                                       "devices_with_data": final["devices_with_data"],
                                       "ingest": final["ingest"]}
        stop(proc)
        if proc.returncode != 0:
            checks.append(f"cassandra: iotflowd exited with status {proc.returncode}")
        out["server_log_tail"] = log_tail(os.path.join(data_dir, "iotflowd.log"))
        # pre-fill from now - 2 h back, batches from an hour ago, singles now
        oldest = now_ms - 7_200_000 - args.prefill * 60_000
        out["store_check"] = store_check(
            cassandra_counts(keyspace, devices, oldest, int(time.time() * 1000) + 60_000),
            devices, args.prefill, list(results.values()), final)
        if not out["store_check"]["ok"]:
            checks.append("cassandra store check: " + out["store_check"]["problem"])
    finally:
        stop(proc)
        if proc and proc.returncode:
            print("iotflowd log:\n" + "\n".join(log_tail(os.path.join(data_dir, "iotflowd.log"))),
                  file=sys.stderr)
        shutil.rmtree(data_dir, ignore_errors=True)
        drop_keyspace(keyspace)
    for name, r in results.items():
        if r["non_2xx"] or any(r["socket_errors"].values()):
            checks.append(f"cassandra {name}: {r['non_2xx']} non-2xx, "
                          f"socket errors {r['socket_errors']}")
        if "check" in r and not r["check"]["ok"]:
            checks.append(f"cassandra {name}: acknowledged and stored counts differ: {r['check']}")
        if r["cpu_cores"]["other"] > 0.25:
            warnings.append(f"cassandra {name}: other processes used "
                            f"{r['cpu_cores']['other']:.2f} cores during the run; its numbers are low")
    out["results"] = results
    out["targets"] = cassandra_targets(results, embedded)
    return out


def print_cassandra(report):
    c = report["cassandra"]
    res, emb = c["results"], report["results"]
    print(f"\n{'Cassandra':<15}{'req/s':>9}{'msg/s':>10}{'points/s':>10}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'embedded req/s':>16}  {'cpu srv/cass/wrk/other':>22}")
    for name, r in res.items():
        cpu = r["cpu_cores"]
        msg = f"{r['messages_per_s']:>10.0f}{r['points_per_s']:>10.0f}" \
            if "messages_per_s" in r else f"{'':>10}{'':>10}"
        base = emb.get(name, {}).get("requests_per_s")
        store = f"{cpu['store']:.2f}" if "store" in cpu else "?"
        print(f"{name:<15}{r['requests_per_s']:>9.0f}{msg}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
              f"{base or 0:>16.0f}  {cpu['server']:>7.2f}/{store}/{cpu['wrk']:.2f}/"
              f"{cpu['other']:.2f}")
    p = res["ingest_paced"]["pacing"]
    print(f"paced single ingest: target {p['target_requests_per_s']:.0f} req/s "
          f"({p['share']:.0%} of the {p['peak_requests_per_s']:.0f} peak), achieved "
          f"{p['achieved_requests_per_s']:.0f}")
    s = c["store_check"]
    print(f"store check: {s['rows_in_store']} rows counted with CQL, expected {s['expected_rows']}, "
          f"server said {s['server_total_messages']} {'ok' if s['ok'] else 'PROBLEM'}")
    print(f"\n{'goal (telemetry on Cassandra)':<30}{'measured':>12}  {'goal':<22}")
    for t in c["targets"]:
        v = "-" if t["value"] is None else f"{t['value']:,.3f}" if t["value"] < 10 \
            else f"{t['value']:,.0f}"
        met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        print(f"{t['what']:<30}{v:>12}  {t['goal']:<22}{met}")


def log_tail(path, n=20):
    """The last lines iotflowd wrote (log level warn: normally none)."""
    try:
        with open(path, errors="replace") as f:
            return [l.rstrip("\n") for l in f.readlines()[-n:]]
    except OSError:
        return []


def sqlite_counts(data_dir):
    """(rows, {device_id: rows}) of the embedded store, read with sqlite3
    once the server has stopped."""
    db = os.path.join(data_dir, "telemetry.db")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        per_dev = dict(con.execute("SELECT device_id, COUNT(*) FROM messages GROUP BY device_id"))
    finally:
        con.close()
    return rows, per_dev


def store_check(counts, devices, prefill_per_device, measured, final):
    """After the server stopped: the rows counted in the telemetry store
    directly (not through the server's counters: `counts` is (rows,
    {device_id: rows})) against pre-fill + what the `measured` scenarios'
    checks saw stored, and against the server's total."""
    rows, per_dev = counts
    stored_by_scenarios = sum(r["check"]["stored_messages"] for r in measured if "check" in r)
    expected = prefill_per_device * len(devices) + stored_by_scenarios
    ingested = [per_dev.get(int(i), 0) - prefill_per_device for i, _ in devices]
    out = {"rows_in_store": rows, "expected_rows": expected,
           "server_total_messages": final["total_messages"],
           "ingested_per_device": {"min": min(ingested), "max": max(ingested),
                                   "mean": round(sum(ingested) / len(ingested), 1)},
           "devices_with_ingest": sum(1 for n in ingested if n > 0)}
    problems = []
    if rows != expected or rows != final["total_messages"]:
        problems.append(f"{rows} rows in the store, expected {expected}, "
                        f"server says {final['total_messages']}")
    # every device must have been used, about evenly (keys rotate per request)
    if out["devices_with_ingest"] != len(devices):
        problems.append(f"only {out['devices_with_ingest']} of {len(devices)} devices got ingest")
    elif min(ingested) < 0.8 * out["ingested_per_device"]["mean"]:
        problems.append(f"uneven device rotation: {out['ingested_per_device']}")
    out["ok"] = not problems
    out["problem"] = "; ".join(problems)
    return out


def print_table(report):
    res = report["results"]
    print()
    print(f"{'scenario':<15}{'req/s':>9}{'msg/s':>10}{'points/s':>10}{'p50 ms':>8}{'p90 ms':>8}"
          f"{'p99 ms':>8}{'non2xx':>7}  {'cpu srv/wrk/other':>17}")
    for name, r in res.items():
        c = r["cpu_cores"]
        msg = f"{r['messages_per_s']:>10.0f}{r['points_per_s']:>10.0f}" if "messages_per_s" in r \
            else f"{'':>10}{'':>10}"
        print(f"{name:<15}{r['requests_per_s']:>9.0f}{msg}{r['p50_ms']:>8.2f}{r['p90_ms']:>8.2f}"
              f"{r['p99_ms']:>8.2f}{r['non_2xx']:>7}  "
              f"{c['server']:>5.2f}/{c['wrk']:.2f}/{c['other']:.2f}")
    p = res["ingest_paced"]["pacing"]
    print(f"\npaced single ingest: target {p['target_requests_per_s']:.0f} req/s "
          f"({p['share']:.0%} of the {p['peak_requests_per_s']:.0f} peak), achieved "
          f"{p['achieved_requests_per_s']:.0f} ({p['achieved_share_of_peak']:.0%}); "
          f"p99 {res['ingest_paced']['p99_ms']:.2f} ms")
    r = report["ratios"]
    pr = report["paired"]
    print(f"paired rounds ({pr['seconds_each']} s each, ceiling then single ingest): ratios "
          + ", ".join(f"{x['ratio']:.3f}" for x in pr["rounds"])
          + (f"; median {pr['median_ratio']:.3f}" if pr["median_ratio"] is not None else ""))
    print(f"ratios: single ingest / ceiling {r['ingest_single_vs_ceiling']:.3f}, "
          f"latest / ceiling {r['latest_vs_ceiling']:.3f} "
          f"(/ GET ceiling {r['latest_vs_ceiling_get']:.3f})")
    lines = []
    for name, x in res.items():
        if "check" in x:
            c = x["check"]
            lines.append(f"{name} {c['acknowledged_messages']} acked / {c['stored_messages']} stored"
                         f" (+{c['in_flight_messages_at_stop']} in flight)"
                         f" {'ok' if c['ok'] else 'MISMATCH'}")
    print("count check: " + "; ".join(lines))
    s = report.get("store_check")
    if s:
        print(f"store check: {s['rows_in_store']} rows in telemetry.db, expected "
              f"{s['expected_rows']}, server said {s['server_total_messages']}; per device "
              f"ingest min/mean/max {s['ingested_per_device']['min']}/"
              f"{s['ingested_per_device']['mean']}/{s['ingested_per_device']['max']}"
              f" {'ok' if s['ok'] else 'PROBLEM'}")
    m = report["machine"]
    print(f"machine: {m['nproc']} x {m['cpu_model']}, {m['memory_mb']} MB, kernel {m['kernel']}; "
          f"cpu columns in cores (wrk and server share them); durability: "
          f"{report['settings']['durability']}")


if __name__ == "__main__":
    main()
