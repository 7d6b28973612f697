"""bench/docs.py — the documents issue's performance goals (issue 12) with wrk.

Three scenarios, each on a fresh iotflowd: single-message ingest without
alert rules and with three rules per device (alternating rounds, the median
ratio), a device reading its own configuration (GET /devices/config), and
the newest 100-event page of the event log (GET /events?limit=100). First
on the embedded stores; then, when MONGODB_URL names a MongoDB-protocol
server (FerretDB in `make bench`), again with the documents store there and
every other store embedded, so that the second column isolates the
documents store. Reuses bench/run.py for the server, the devices, wrk and
the report's conventions; prints measured against goal and writes
bench/results/docs-<UTC date-time>.json. See bench/README.md, "Documents".

Usage: .venv/bin/python bench/docs.py [--binary build/iotflowd] [--duration 10]
                                     [--connections 32] [--threads 2] [--devices 100]
                                     [--pairs 3] [--pair-duration 5] [--events 3000] ...
Exit status 1 when a check failed (non-2xx answers, socket errors, a sample
answer that is not what was stored, acknowledged and stored messages that
differ); a missed goal is not a failed check.
"""
import argparse
import collections
import contextlib
import datetime
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as core  # noqa: E402  (bench/run.py: server, devices, wrk, machine)

# The goals: (key, what, scenario, value, comparison, goal, unit,
# applies to the FerretDB column too).
GOALS = (
    ("ingest_rules", "single ingest, 3 rules/device vs none", "ingest_rules",
     "median_ratio_quiet", ">=", 0.9, "x without rules", True),
    ("config_get", "device config GET", "config_get", "requests_per_s", ">=", 20_000,
     "req/s embedded", False),
    ("events_page", "100-event page", "events_page", "requests_per_s", ">=", 5_000,
     "pages/s embedded", False),
)

# Three rules per device on what ingest_single.lua sends (temperature 21.5,
# humidity 40, pressure 1013): evaluated on every message, never true.
# ingest_flap.lua alternates the pressure 1013/1014, so that the third one
# fires and resolves itself again and again: at most once per cooldown
# (--flap-cooldown) per device, so that the alert writes stay within what
# a documents store on another server keeps up with.
RULES = (("temperature", ">", 1000), ("humidity", "<", -1000), ("pressure", "!=", 1013))


class SetupFailed(Exception):
    """A request a scenario needs before measuring got an unexpected answer."""


# ---- HTTP helpers (beyond run.py's `call`, which raises on a non-2xx) -----------

def request(conn, method, path, body=None, headers=None):
    """(status, headers, parsed JSON or None) over a kept-alive connection."""
    data = json.dumps(body) if body is not None else None
    conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
    r = conn.getresponse()
    raw = r.read()
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return r.status, r.headers, doc


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def expect(status, want, what, doc):
    if status not in want:
        raise SetupFailed(f"{what}: HTTP {status} {json.dumps(doc)[:200]}")


def in_parallel(base, jobs, workers=4):
    """Sends jobs (method, path, body, headers) over `workers` keep-alive
    connections; returns the parsed answers in job order. Any answer but
    2xx stops the scenario (SetupFailed)."""
    answers = [None] * len(jobs)
    todo = list(enumerate(jobs))
    failures = []
    lock = threading.Lock()

    def worker():
        conn = connect(base)
        try:
            while True:
                with lock:
                    if not todo or failures:
                        return
                    i, (method, path, body, headers) = todo.pop()
                status, _, doc = request(conn, method, path, body, headers)
                with lock:
                    if 200 <= status < 300:
                        answers[i] = doc
                    else:
                        failures.append(f"{method} {path}: HTTP {status} {json.dumps(doc)[:200]}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SetupFailed(failures[0])
    return answers


# ---- FerretDB ---------------------------------------------------------------------

class Column:
    """Where the documents store lives: embedded (mongodb_url None) or a
    database of its own per server on the MongoDB-protocol server."""

    def __init__(self, name, label, mongodb_url=None):
        self.name, self.label, self.url = name, label, mongodb_url
        self.store_pid = None
        if mongodb_url:
            u = urllib.parse.urlsplit(mongodb_url)
            self.host, self.port = u.hostname, u.port or 27017
            self.store_pid = core.pid_listening_on(self.port)

    def backends(self, scenario):
        """The environment of a fresh server: {} embedded, else MONGODB_URL
        with a database of its own."""
        if not self.url:
            return {}
        u = urllib.parse.urlsplit(self.url)
        db = f"bench_docs_{int(time.time())}_{os.getpid()}_{scenario}"
        return {"MONGODB_URL": urllib.parse.urlunsplit(u._replace(path="/" + db))}

    def drop(self, env, warnings):
        """Drops the server's database (FerretDB keeps each in a file)."""
        url = env.get("MONGODB_URL")
        if not url:
            return
        db = urllib.parse.urlsplit(url).path.lstrip("/")
        try:
            mongo_drop_database(self.host, self.port, db)
        except (OSError, ValueError) as e:
            warnings.append(f"could not drop database {db} on {self.host}:{self.port}: {e}")


def bson_doc(fields):
    """A BSON document of int32 and string fields (all dropDatabase needs)."""
    out = b""
    for k, v in fields.items():
        name = k.encode() + b"\0"
        if isinstance(v, int):
            out += b"\x10" + name + struct.pack("<i", v)
        else:
            s = v.encode() + b"\0"
            out += b"\x02" + name + struct.pack("<i", len(s)) + s
    return struct.pack("<i", len(out) + 5) + out + b"\0"


def mongo_drop_database(host, port, db):
    """{dropDatabase: 1} in one OP_MSG (no driver in .venv for one command);
    raises ValueError unless the server answers ok: 1."""
    body = struct.pack("<I", 0) + b"\0" + bson_doc({"dropDatabase": 1, "$db": db})
    msg = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(msg)
        head = s.recv(4, socket.MSG_WAITALL)
        size = struct.unpack("<i", head)[0]
        reply = head + s.recv(size - 4, socket.MSG_WAITALL)
    at = reply.find(b"\x01ok\0")
    if at < 0 or struct.unpack("<d", reply[at + 4:at + 12])[0] != 1.0:
        raise ValueError(f"dropDatabase answered {reply[21:][:200]!r}")


# ---- one fresh server per scenario ------------------------------------------------

# What a scenario gets: the server's process and URL, the devices ((id,
# key) pairs), the user's Bearer header, the server's log file, the column
# and a wrk runner for these devices.
Server = collections.namedtuple("Server", "proc base devices auth log column run")


@contextlib.contextmanager
def fresh_server(args, binary, column, scenario, checks, warnings):
    """iotflowd with `column`'s documents store and a fresh data dir, its
    user and --devices devices registered; yields a Server. Stopped
    (SIGTERM) and cleaned up afterwards."""
    data_dir = tempfile.mkdtemp(prefix=f"iotflow-bench-docs-{scenario}-")
    env = column.backends(scenario)
    proc = None
    try:
        proc, base = core.start_server(binary, data_dir, False, env)
        devices = core.setup_devices(base, args.devices)
        yield Server(proc, base, devices, core.login(base),
                     os.path.join(data_dir, "iotflowd.log"), column,
                     core.Runner(args, devices, int(time.time() * 1000)))
        core.stop(proc)
        if proc.returncode != 0:
            checks.append(f"{column.name} {scenario}: iotflowd exited with status "
                          f"{proc.returncode}")
    finally:
        core.stop(proc)
        if proc and proc.returncode:
            print("iotflowd log:\n" + "\n".join(core.log_tail(os.path.join(data_dir,
                                                                            "iotflowd.log"))),
                  file=sys.stderr)
        shutil.rmtree(data_dir, ignore_errors=True)
        column.drop(env, warnings)


def measure(srv, script, duration, path, env=None):
    """One wrk run; prints its rate."""
    res = srv.run.wrk(srv.base + path, script, duration, srv.proc.pid, env, srv.column.store_pid)
    print(f" {res['requests_per_s']:.0f} req/s", end="", flush=True)
    return res


# ---- 1. single ingest with and without alert rules -------------------------------

def engine_cpu_s(pid):
    """CPU seconds of the alert engine's thread ("alerting"), or None."""
    cpu = [c for n, c in core.threads_cpu_s(pid).values() if n == "alerting"]
    return sum(cpu) if cpu else None


def alerts_summary(srv):
    status, _, doc = get(srv, "/api/v1/alerts/summary")
    return doc if status == 200 else {"status": status}


def settle_alerting(srv, timeout=300):
    """Waits until the alert engine is done with what ingest committed (it
    evaluates off the request path, and one run's backlog must not run
    into the next): until, over half a second, its thread ("alerting") used
    no CPU and the documents server (FerretDB), whose answers it may be
    waiting for, next to none. Returns the seconds waited and the thread's
    CPU seconds meanwhile (None without such a thread)."""
    def store():
        return core.proc_cpu_s(srv.column.store_pid) if srv.column.store_pid else 0.0

    t0 = time.time()
    first = last = engine_cpu_s(srv.proc.pid)
    if first is None:
        return None
    last_store = store()
    while time.time() - t0 < timeout:
        time.sleep(0.5)
        now, now_store = engine_cpu_s(srv.proc.pid), store()
        if now == last and now_store - last_store < 0.05:
            break
        last, last_store = now, now_store
    return {"seconds": round(time.time() - t0, 2), "engine_cpu_s": round(last - first, 2)}


def warm_up(srv):
    """One message per device, then the engine settled: a device's rules
    are (re)loaded on its first message after they changed, and the runs
    measure the steady state."""
    body = {"data": {"temperature": 21.5, "humidity": 40, "pressure": 1013}}
    in_parallel(srv.base, [("POST", "/api/v1/telemetry", body, {"X-API-Key": key})
                           for _, key in srv.devices])
    core.settle(srv.base)
    return settle_alerting(srv)


# The engine's warning when its queue is full (core/alerting.c): messages
# committed but not evaluated; the log holds the running total.
NOT_EVALUATED = re.compile(r"evaluation queue full; (\d+) messages not evaluated")


def not_evaluated(log_path):
    """Messages the alert engine dropped, by the server's log."""
    try:
        with open(log_path, errors="replace") as f:
            counts = [int(m.group(1)) for m in NOT_EVALUATED.finditer(f.read())]
    except OSError:
        return None
    return max(counts, default=0)


def rule_id(doc):
    rule = doc.get("rule", doc) if isinstance(doc, dict) else {}
    if not rule.get("id"):
        raise SetupFailed(f"POST /api/v1/alert-rules answered without an id: {doc}")
    return rule["id"]


def create_rules(srv, cooldown_s):
    jobs = [("POST", "/api/v1/alert-rules",
             {"name": f"bench-{dev_id}-{m}", "device_id": int(dev_id), "measurement": m,
              "operator": op, "threshold": threshold, "severity": "warning",
              "cooldown_s": cooldown_s}, srv.auth)
            for dev_id, _ in srv.devices for m, op, threshold in RULES]
    return [rule_id(doc) for doc in in_parallel(srv.base, jobs)]


def delete_rules(srv, ids):
    in_parallel(srv.base, [("DELETE", f"/api/v1/alert-rules/{i}", None, srv.auth) for i in ids])


def get(srv, path, headers=None):
    """(status, headers, JSON) of one GET, with the user's token by default."""
    conn = connect(srv.base)
    try:
        return request(conn, "GET", path, None, srv.auth if headers is None else headers)
    finally:
        conn.close()


def ingest_run(args, srv, script):
    """One single-ingest run, its messages checked against the store, then
    the alert engine's backlog waited for."""
    before, engine0 = core.tm_status(srv.base), engine_cpu_s(srv.proc.pid)
    res = measure(srv, script, args.pair_duration, "/api/v1/telemetry")
    if engine0 is not None:  # evaluating during the run (the rest: alert_backlog)
        res["alert_engine_cpu_s_during_run"] = round(engine_cpu_s(srv.proc.pid) - engine0, 2)
    core.per_message(res, 1)
    core.ingest_check(srv.base, res, before)
    res["alert_backlog"] = settle_alerting(srv)
    res["alert_messages_not_evaluated_so_far"] = not_evaluated(srv.log)
    backlog = res["alert_backlog"]
    print(f" (engine backlog {backlog['seconds']:.1f} s);" if backlog and backlog["engine_cpu_s"]
          else ";", end="", flush=True)
    time.sleep(0.5)
    return res


def ingest_round(args, srv, i, ids):
    """Round i: without rules and with them, in alternating order; `ids`
    (the rules in place, a list kept across rounds) is updated."""
    r = {}
    for phase in (("none", "rules") if i % 2 == 0 else ("rules", "none")):
        if phase == "none":
            if ids:
                delete_rules(srv, ids)
                ids.clear()
                warm_up(srv)
            print(" no rules", end="", flush=True)
            r["none"] = ingest_run(args, srv, "ingest_single.lua")
        else:
            if not ids:  # round i - 1 may have ended with them
                ids.extend(create_rules(srv, args.flap_cooldown))
                r["rules_loaded"] = warm_up(srv)
            print(f" {len(ids)} rules", end="", flush=True)
            r["rules_quiet"] = ingest_run(args, srv, "ingest_single.lua")
            if not args.no_flap:
                print(" one flapping", end="", flush=True)
                r["rules_flapping"] = ingest_run(args, srv, "ingest_flap.lua")
    none = r["none"]["requests_per_s"]
    for k in ("quiet", "flapping"):
        if f"rules_{k}" in r:
            r[f"ratio_{k}"] = round(r[f"rules_{k}"]["requests_per_s"] / none, 3)
    return r


def ingest_rules(args, srv):
    """Rounds of single ingest without rules and with three rules per
    device (and, unless --no-flap, the flapping variant), the order
    alternating from round to round; rules are created before and deleted
    after the phase that has them. The median of the rounds' ratios."""
    rounds, ids = [], []
    for i in range(args.pairs):
        print(f"  ingest round {i + 1}:", end="", flush=True)
        r = ingest_round(args, srv, i, ids)
        rounds.append(r)
        print(f" ratio {r['ratio_quiet']:.3f}"
              + (f", flapping {r['ratio_flapping']:.3f}" if "ratio_flapping" in r else ""),
              flush=True)
    delete_rules(srv, ids)

    def median(key):
        v = sorted(r[key] for r in rounds if key in r)
        return v[len(v) // 2] if v else None

    return {"seconds_each": args.pair_duration, "rules_per_device": len(RULES),
            "rules": [{"measurement": m, "operator": op, "threshold": t,
                       "cooldown_s": args.flap_cooldown} for m, op, t in RULES],
            "rounds": rounds, "median_ratio_quiet": median("ratio_quiet"),
            "median_ratio_flapping": median("ratio_flapping"),
            "alert_messages_not_evaluated": not_evaluated(srv.log),
            "alerts_summary_at_end": alerts_summary(srv)}


# ---- 2. a device's own configuration ---------------------------------------------

def sample_config(config):
    """A configuration of a realistic size (~300 bytes of JSON)."""
    return {"sampling_interval_s": 10, "report_interval_s": 60,
            "thresholds": {"temperature": {"min": -20, "max": 60},
                           "humidity": {"min": 5, "max": 95}},
            "firmware": {"channel": "stable", "version": "2.4.1"},
            "network": {"wifi_ssid": "plant-floor-2", "retry_backoff_ms": [500, 1000, 5000]},
            "labels": ["bench", f"device-{config}"]}


def config_get(args, srv):
    """PUT a configuration per device, check one device's GET (body, ETag,
    304 on If-None-Match), then measure GET /devices/config."""
    in_parallel(srv.base, [("PUT", f"/api/v1/devices/{dev_id}/config", sample_config(dev_id),
                            srv.auth) for dev_id, _ in srv.devices])
    dev_id, key = srv.devices[0]
    status, headers, doc = get(srv, "/api/v1/devices/config", {"X-API-Key": key})
    expect(status, (200,), "GET /api/v1/devices/config", doc)
    if doc.get("config") != sample_config(dev_id):
        raise SetupFailed(f"GET /api/v1/devices/config: not the configuration PUT: {doc}")
    etag = headers.get("ETag")
    not_modified = get(srv, "/api/v1/devices/config",
                       {"X-API-Key": key, "If-None-Match": etag or '"none"'})[0]
    if not etag or not_modified != 304:
        raise SetupFailed(f"GET /api/v1/devices/config with If-None-Match {etag}: "
                          f"HTTP {not_modified}, expected 304")
    print("  config GET ...", end="", flush=True)
    res = measure(srv, "config_get.lua", args.duration, "/api/v1/devices/config")
    print(flush=True)
    res["sample"] = {"body_bytes": len(json.dumps(doc)), "version": doc.get("version"),
                     "etag": etag, "if_none_match_status": not_modified}
    return res


# ---- 3. the newest page of the event log ------------------------------------------

def wait_events(srv, expected, timeout=120):
    """Polls GET /events/summary until its total stops growing (the event
    writer works off the request path, in batches); returns (total,
    summary, seconds waited)."""
    t0, last = time.time(), None
    while True:
        status, _, doc = get(srv, "/api/v1/events/summary")
        expect(status, (200,), "GET /api/v1/events/summary", doc)
        n = doc["total"]
        if (last is not None and n == last and n >= expected) or time.time() - t0 > timeout:
            return n, doc, round(time.time() - t0, 2)
        last = n
        time.sleep(0.5)


def event_jobs(srv, n):
    """n state changes: configuration PUTs, every third a metadata PUT,
    going round the devices."""
    jobs = []
    for i in range(n):
        dev_id, _ = srv.devices[i % len(srv.devices)]
        if i % 3 == 2:
            jobs.append(("PUT", f"/api/v1/devices/{dev_id}/metadata",
                         {"tags": ["bench", f"round-{i // len(srv.devices)}"],
                          "attributes": {"floor": 2, "line": i % 7},
                          "location": {"latitude": 48.85 + (i % 100) / 1000,
                                       "longitude": 2.35 + (i % 50) / 1000}}, srv.auth))
        else:
            jobs.append(("PUT", f"/api/v1/devices/{dev_id}/config", sample_config(i), srv.auth))
    return jobs


def events_page(args, srv, warnings):
    """Pre-fills about --events events (the registrations, then
    configuration and metadata changes), waits for the event writer,
    checks one page, then measures GET /events?limit=--page."""
    made = len(srv.devices) + 1  # device.registered each, user.registered
    t0 = time.time()
    in_parallel(srv.base, event_jobs(srv, max(args.events - made, 0)))
    sent = time.time() - t0
    expected = max(args.events, made)
    stored, summary, waited = wait_events(srv, expected)
    prefill = {"events_expected": expected, "requests_seconds": round(sent, 2),
               "events_counted": stored, "waited_for_writer_seconds": waited, "summary": summary}
    if stored < expected:
        warnings.append(f"{srv.column.name} events_page: {stored} events counted, "
                        f"{expected} expected (dropped by a full queue?)")
    status, _, doc = get(srv, f"/api/v1/events?limit={args.page}")
    expect(status, (200,), "GET /api/v1/events", doc)
    events = doc.get("events")
    if not isinstance(events, list) or len(events) != min(args.page, stored):
        raise SetupFailed(f"GET /api/v1/events?limit={args.page}: "
                          f"{len(events) if isinstance(events, list) else 'no'} events, "
                          f"expected {min(args.page, stored)}")
    print(f"  events page ({stored} events) ...", end="", flush=True)
    res = measure(srv, "events_page.lua", args.duration, "/api/v1/events",
                  {"BENCH_TOKEN": srv.auth["Authorization"].split(" ", 1)[1],
                   "BENCH_LIMIT": str(args.page)})
    print(flush=True)
    res["prefill"] = prefill
    res["sample"] = {"events": len(events), "body_bytes": len(json.dumps(doc))}
    return res


# ---- the machine's ceiling -------------------------------------------------------

def ceiling_get(args, bare):
    """config_get.lua's requests to bench_bare (libmicrohttpd answering
    without doing anything, bench/bare.c): what this machine and wrk allow
    a GET just now — the 2-core reference VM's speed varies by a third from
    one hour to the next, and the GET goals read better beside it."""
    proc = None
    try:
        proc, base = core.start_bare(bare)
        run = core.Runner(args, [(0, "ceiling")], 0)
        print("bench docs: GET ceiling (bench_bare) ...", end="", flush=True)
        res = run.wrk(base + "/api/v1/devices/config", "config_get.lua", args.duration, proc.pid)
        print(f" {res['requests_per_s']:.0f} req/s", flush=True)
        return res
    finally:
        core.stop(proc)


# ---- a column ---------------------------------------------------------------------

SCENARIOS = ("ingest_rules", "config_get", "events_page")


def run_column(args, binary, column, checks, warnings):
    print(f"bench docs: {column.label}", flush=True)
    out = {"documents": column.label, "results": {}}
    for scenario in SCENARIOS:
        try:
            with fresh_server(args, binary, column, scenario, checks, warnings) as srv:
                if scenario == "ingest_rules":
                    res = ingest_rules(args, srv)
                elif scenario == "config_get":
                    res = config_get(args, srv)
                else:
                    res = events_page(args, srv, warnings)
                out["results"][scenario] = res
        except SetupFailed as e:
            print(f"\n  {scenario}: {e}", flush=True)
            checks.append(f"{column.name} {scenario}: {e}")
    return out


def wrk_runs(column):
    """(label, wrk result) of every wrk run of a column."""
    for scenario, res in column["results"].items():
        if scenario == "ingest_rules":
            for i, r in enumerate(res["rounds"]):
                for phase in ("none", "rules_quiet", "rules_flapping"):
                    if phase in r:
                        yield f"{scenario} round {i + 1} {phase}", r[phase]
        else:
            yield scenario, res


def check_runs(name, column, checks, warnings):
    dropped = column["results"].get("ingest_rules", {}).get("alert_messages_not_evaluated")
    if dropped:
        warnings.append(f"{name} ingest_rules: the alert engine's queue was full, {dropped} "
                        "messages not evaluated (see its log warning)")
    for label, r in wrk_runs(column):
        if r["non_2xx"]:
            checks.append(f"{name} {label}: {r['non_2xx']} non-2xx answers")
        errors = dict(r["socket_errors"])
        if name == "ferretdb" and errors.pop("timeout"):
            # FerretDB sorts in Go after reading all a filter leaves: a page
            # of events may take longer than wrk's timeout. Slow, not wrong.
            warnings.append(f"{name} {label}: {r['socket_errors']['timeout']} requests took "
                            "longer than wrk's 10 s timeout")
        if any(errors.values()):
            checks.append(f"{name} {label}: socket errors {r['socket_errors']}")
        c = r.get("check")
        if c and not c["ok"]:
            checks.append(f"{name} {label}: wrk saw {c['acknowledged_messages']} messages "
                          f"acknowledged (+{c['in_flight_messages_at_stop']} in flight), "
                          f"the store gained {c['stored_messages']}")
        if r["cpu_cores"]["other"] > 0.25:
            warnings.append(f"{name} {label}: other processes used {r['cpu_cores']['other']:.2f} "
                            "cores during the run; its numbers are low")


def goals(columns):
    out = []
    for key, what, scenario, field, op, goal, unit, everywhere in GOALS:
        for name, column in columns.items():
            value = column["results"].get(scenario, {}).get(field)
            applies = name == "embedded" or everywhere
            met = None if value is None or not applies else \
                (value >= goal if op == ">=" else value < goal)
            out.append({"goal": key, "what": what, "column": name, "scenario": scenario,
                        "field": field, "value": value, "applies": applies,
                        "target": f"{op} {goal:,} {unit}".replace(">=", "≥"), "met": met})
    return out


# ---- output -----------------------------------------------------------------------

def fmt(v):
    return "-" if v is None else f"{v:,.3f}" if v < 10 else f"{v:,.0f}"


def print_runs(column):
    print(f"{'run':<37}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non2xx':>7}"
          f"  {'cpu srv/store/wrk/other':>23}  alert engine s (run/after)")
    for label, r in wrk_runs(column):
        cpu = r["cpu_cores"]
        store = f"{cpu['store']:.2f}" if "store" in cpu else "-"
        engine, backlog = "", r.get("alert_backlog")
        if backlog:
            engine = f"{r.get('alert_engine_cpu_s_during_run', 0):.2f}/" \
                     f"{backlog['engine_cpu_s']:.2f} in {backlog['seconds']} s"
        print(f"{label:<37}{r['requests_per_s']:>8.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
              f"{r['non_2xx']:>7}  {cpu['server']:>9.2f}/{store}/{cpu['wrk']:.2f}/"
              f"{cpu['other']:.2f}  {engine}")
    ing = column["results"].get("ingest_rules")
    if ing:
        print("ratio with rules / without, per round: "
              + ", ".join(f"{r['ratio_quiet']:.3f}" for r in ing["rounds"])
              + ("; one rule flapping: " + ", ".join(f"{r['ratio_flapping']:.3f}"
                                                     for r in ing["rounds"])
                 if ing["median_ratio_flapping"] is not None else ""))
        a = ing["alerts_summary_at_end"]
        print(f"alerts raised: {a.get('total')} ({a.get('by_status')}); messages not evaluated "
              f"(engine queue full): {ing['alert_messages_not_evaluated'] or 0}")


def print_tables(report):
    cols = report["columns"]
    for c in cols.values():
        print(f"\n{c['documents']}")
        print_runs(c)
    print(f"\n{'goal':<40}" + "".join(f"{n:>18}" for n in cols) + "  target")
    by = {(g["goal"], g["column"]): g for g in report["goals"]}
    for key, what, *_ in GOALS:
        row = f"{what:<40}"
        for n in cols:
            g = by[(key, n)]
            verdict = {True: "met", False: "MISSED", None: "-"}[g["met"]]
            row += f"{fmt(g['value']) + ' ' + verdict:>18}"
        print(row + "  " + g["target"])
    row = f"{'  the same, one rule flapping':<40}"
    for c in cols.values():
        row += f"{fmt(c['results'].get('ingest_rules', {}).get('median_ratio_flapping')):>18}"
    print(row + "  (no goal)")
    c = report["ceiling_get"]["requests_per_s"]
    shares = [f"{what} {fmt(cols['embedded']['results'][name]['requests_per_s'] / c)}"
              for name, what in (("config_get", "config GET"), ("events_page", "event page"))
              if name in cols["embedded"]["results"]]
    print(f"GET ceiling (bench_bare, the same requests as config GET): {c:,.0f} req/s"
          + (f"; embedded {', '.join(shares)} of it" if shares else ""))
    m = report["machine"]
    print(f"machine: {m['nproc']} x {m['cpu_model']}, {m['memory_mb']} MB, kernel {m['kernel']}; "
          "cpu columns in cores (wrk, server and the store share them)")


# ---- the run ----------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/iotflowd", help="iotflowd to measure")
    ap.add_argument("--bare", default=None,
                    help="the GET ceiling (default: bench_bare next to --binary)")
    ap.add_argument("--duration", type=int, default=10,
                    help="seconds of the config and events scenarios")
    ap.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--devices", type=int, default=100, help="devices, round-robin over requests")
    ap.add_argument("--pairs", type=int, default=5,
                    help="ingest rounds without and with rules, for a median ratio")
    ap.add_argument("--pair-duration", type=int, default=5, help="seconds per ingest run")
    ap.add_argument("--no-flap", action="store_true",
                    help="skip the ingest variant where a rule fires and resolves repeatedly")
    ap.add_argument("--flap-cooldown", type=float, default=1.0,
                    help="the rules' cooldown_s: the flapping rule fires at most this often")
    ap.add_argument("--events", type=int, default=3000, help="events in the log before the page")
    ap.add_argument("--page", type=int, default=100, help="events per page")
    ap.add_argument("--no-ferretdb", action="store_true",
                    help="skip the column with documents on MONGODB_URL")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.set_defaults(batch_size=1)  # core.Runner passes it to every script; unused here
    args = ap.parse_args()
    binary, bare = core.programs(args)

    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.time()
    info = core.machine()
    mongodb_url = os.environ.get("MONGODB_URL", "")
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": info,
        "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        "cwd": os.getcwd(),
        "settings": {**vars(args), "binary": binary, "bare": bare, "wrk_timeout_s": 10,
                     "server_threads": 2 * (os.cpu_count() or 1), "mongodb_url": mongodb_url,
                     "durability": "commit = in the WAL via write(2), no fsync "
                                   "(process-crash safe)"},
        "iotflowd": core.build_of(binary),
        "notes": [
            "each scenario runs on a fresh iotflowd (fresh data dir; on FerretDB a fresh "
            "database, dropped at the end); other stores embedded in both columns",
            f"wrk, the server and FerretDB share the machine's {os.cpu_count()} CPUs over "
            "loopback; cpu_cores says who used them",
            "alert rules are evaluated off the ingest path (a queue after the group commit): "
            "each ingest run waits for the engine to finish before the next",
        ],
    }
    checks, warnings = [], []
    columns = [Column("embedded", "documents embedded (SQLite)")]
    if mongodb_url and not args.no_ferretdb:
        columns.append(Column("ferretdb", f"documents on FerretDB ({mongodb_url})", mongodb_url))
    elif not args.no_ferretdb:
        print("no MONGODB_URL: the FerretDB column is skipped (`make bench` starts FerretDB)",
              flush=True)
    report["ceiling_get"] = ceiling_get(args, bare)
    check_runs("ceiling", {"results": {"ceiling_get": report["ceiling_get"]}}, checks, warnings)
    report["columns"] = {}
    for column in columns:
        out = run_column(args, binary, column, checks, warnings)
        out["store_pid_found"] = column.store_pid is not None if column.url else None
        report["columns"][column.name] = out
        check_runs(column.name, out, checks, warnings)
    report["goals"] = goals(report["columns"])
    report["checks"] = {"ok": not checks, "problems": checks, "warnings": warnings}
    report["total_seconds"] = round(time.time() - t_start, 1)

    print_tables(report)
    core.finish(report, os.path.join(args.out_dir, "docs-" + started.strftime("%Y-%m-%dT%H%M%SZ")
                                     + ".json"), checks, warnings)


if __name__ == "__main__":
    main()
