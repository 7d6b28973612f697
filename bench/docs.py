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
import contextlib
import datetime
import http.client
import json
import os
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
# fires and resolves itself on every other message of a device.
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
    return r.status, dict(r.getheaders()), doc


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

@contextlib.contextmanager
def fresh_server(args, binary, column, scenario, checks, warnings):
    """iotflowd with `column`'s documents store and a fresh data dir, its
    user and --devices devices registered; yields (proc, base, devices,
    user's Bearer header). Stopped (SIGTERM) and cleaned up afterwards."""
    data_dir = tempfile.mkdtemp(prefix=f"iotflow-bench-docs-{scenario}-")
    env = column.backends(scenario)
    proc = None
    try:
        proc, base = core.start_server(binary, data_dir, False, env)
        devices = core.setup_devices(base, args.devices)
        yield proc, base, devices, core.login(base)
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


def measure(run, column, base, proc, script, duration, path, env=None):
    """One wrk run; prints its rate."""
    res = run.wrk(base + path, script, duration, proc.pid, env, column.store_pid)
    print(f" {res['requests_per_s']:.0f} req/s", end="", flush=True)
    return res


# ---- 1. single ingest with and without alert rules -------------------------------

def alerting_stats(base):
    """The alert engine's counters from the admin's telemetry status, or
    None when the server does not report them."""
    return core.tm_status(base).get("alerting")


def settle_alerting(base, timeout=60):
    """Waits until the alert engine has evaluated what ingest committed (its
    `evaluated` count stops moving), so that one round's evaluation does not
    run into the next round; returns its counters."""
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        s = alerting_stats(base)
        if s is None or (last is not None and s == last):
            return s
        last = s
        time.sleep(0.3)
    return alerting_stats(base)


def rule_id(doc):
    rule = doc.get("rule", doc) if isinstance(doc, dict) else {}
    if not rule.get("id"):
        raise SetupFailed(f"POST /api/v1/alert-rules answered without an id: {doc}")
    return rule["id"]


def create_rules(base, auth, devices):
    jobs = [("POST", "/api/v1/alert-rules",
             {"name": f"bench-{dev_id}-{m}", "device_id": int(dev_id), "measurement": m,
              "operator": op, "threshold": threshold, "severity": "warning"}, auth)
            for dev_id, _ in devices for m, op, threshold in RULES]
    return [rule_id(doc) for doc in in_parallel(base, jobs)]


def delete_rules(base, auth, ids):
    in_parallel(base, [("DELETE", f"/api/v1/alert-rules/{i}", None, auth) for i in ids])


def alerts_summary(base, auth):
    conn = connect(base)
    try:
        status, _, doc = request(conn, "GET", "/api/v1/alerts/summary", None, auth)
    finally:
        conn.close()
    return doc if status == 200 else {"status": status, "answer": doc}


def ingest_rules(args, run, column, base, proc, devices, auth):
    """Paired rounds, each single ingest without rules and with three rules
    per device (and, unless --no-flap, with the flapping variant), the order
    alternating from round to round; rules are created before and deleted
    after the phase that has them. The median of the rounds' ratios."""
    rounds, ids = [], []

    def ingest(script):
        before = core.tm_status(base)
        res = measure(run, column, base, proc, script, args.pair_duration, "/api/v1/telemetry")
        core.per_message(res, 1)
        core.ingest_check(base, res, before)
        res["alerting_after"] = settle_alerting(base)
        time.sleep(0.5)
        return res

    for i in range(args.pairs):
        print(f"  ingest round {i + 1}:", end="", flush=True)
        r = {}
        for phase in (("none", "rules") if i % 2 == 0 else ("rules", "none")):
            if phase == "none":
                if ids:
                    delete_rules(base, auth, ids)
                    ids = []
                print(" no rules", end="", flush=True)
                r["none"] = ingest("ingest_single.lua")
            else:
                ids = create_rules(base, auth, devices)
                print(f", {len(ids)} rules", end="", flush=True)
                r["rules_quiet"] = ingest("ingest_single.lua")
                if not args.no_flap:
                    print(", one flapping", end="", flush=True)
                    r["rules_flapping"] = ingest("ingest_flap.lua")
        none = r["none"]["requests_per_s"]
        r["ratio_quiet"] = round(r["rules_quiet"]["requests_per_s"] / none, 3)
        if "rules_flapping" in r:
            r["ratio_flapping"] = round(r["rules_flapping"]["requests_per_s"] / none, 3)
        rounds.append(r)
        print(f"; ratio {r['ratio_quiet']:.3f}"
              + (f", flapping {r['ratio_flapping']:.3f}" if "ratio_flapping" in r else ""),
              flush=True)
    if ids:
        delete_rules(base, auth, ids)

    def median(key):
        v = sorted(r[key] for r in rounds if key in r)
        return v[len(v) // 2] if v else None

    return {"seconds_each": args.pair_duration, "rules_per_device": len(RULES),
            "rules": [{"measurement": m, "operator": op, "threshold": t} for m, op, t in RULES],
            "rounds": rounds, "median_ratio_quiet": median("ratio_quiet"),
            "median_ratio_flapping": median("ratio_flapping"),
            "alerts_summary_at_end": alerts_summary(base, auth)}


# ---- 2. a device's own configuration ---------------------------------------------

def sample_config(config):
    """A configuration of a realistic size (~300 bytes of JSON)."""
    return {"sampling_interval_s": 10, "report_interval_s": 60,
            "thresholds": {"temperature": {"min": -20, "max": 60},
                           "humidity": {"min": 5, "max": 95}},
            "firmware": {"channel": "stable", "version": "2.4.1"},
            "network": {"wifi_ssid": "plant-floor-2", "retry_backoff_ms": [500, 1000, 5000]},
            "labels": ["bench", f"device-{config}"]}


def config_get(args, run, column, base, proc, devices, auth):
    """PUT a configuration per device, check one device's GET (body, ETag,
    304 on If-None-Match), then measure GET /devices/config."""
    in_parallel(base, [("PUT", f"/api/v1/devices/{dev_id}/config", sample_config(dev_id), auth)
                       for dev_id, _ in devices])
    dev_id, key = devices[0]
    conn = connect(base)
    try:
        status, headers, doc = request(conn, "GET", "/api/v1/devices/config", None,
                                       {"X-API-Key": key})
        expect(status, (200,), "GET /api/v1/devices/config", doc)
        got = doc.get("config") if isinstance(doc, dict) else None
        if got != sample_config(dev_id):
            raise SetupFailed(f"GET /api/v1/devices/config: not the configuration PUT: {doc}")
        etag = headers.get("ETag")
        not_modified = None
        if etag:
            not_modified, _, _ = request(conn, "GET", "/api/v1/devices/config", None,
                                         {"X-API-Key": key, "If-None-Match": etag})
    finally:
        conn.close()
    sample = {"body_bytes": len(json.dumps(doc)), "version": doc.get("version"), "etag": etag,
              "if_none_match_status": not_modified}
    if not_modified != 304:
        raise SetupFailed(f"GET /api/v1/devices/config with If-None-Match {etag}: "
                          f"HTTP {not_modified}, expected 304")
    print("  config GET ...", end="", flush=True)
    res = measure(run, column, base, proc, "config_get.lua", args.duration,
                  "/api/v1/devices/config")
    print(flush=True)
    res["sample"] = sample
    return res


# ---- 3. the newest page of the event log ------------------------------------------

def events_total(base, auth):
    """The user's event count by GET /events/summary (counts by type)."""
    conn = connect(base)
    try:
        status, _, doc = request(conn, "GET", "/api/v1/events/summary", None, auth)
    finally:
        conn.close()
    expect(status, (200,), "GET /api/v1/events/summary", doc)
    if isinstance(doc, dict) and isinstance(doc.get("total"), int):
        return doc["total"], doc
    counts = doc.get("by_type", doc.get("counts", doc)) if isinstance(doc, dict) else doc
    if isinstance(counts, dict):
        return sum(v for v in counts.values() if isinstance(v, int)), doc
    if isinstance(counts, list):
        return sum(c.get("count", 0) for c in counts if isinstance(c, dict)), doc
    raise SetupFailed(f"GET /api/v1/events/summary: no counts in {doc}")


def wait_events(base, auth, expected, timeout=120):
    """Polls the summary until the count stops growing (the event writer
    works off the request path, in batches); returns (count, summary,
    seconds waited)."""
    t0, last = time.time(), None
    while True:
        n, doc = events_total(base, auth)
        if (last is not None and n == last and n >= expected) or time.time() - t0 > timeout:
            return n, doc, round(time.time() - t0, 2)
        last = n
        time.sleep(0.5)


def event_jobs(devices, auth, n):
    """n state changes: configuration PUTs, every third a metadata PUT,
    going round the devices."""
    jobs = []
    for i in range(n):
        dev_id, _ = devices[i % len(devices)]
        if i % 3 == 2:
            jobs.append(("PUT", f"/api/v1/devices/{dev_id}/metadata",
                         {"tags": ["bench", f"round-{i // len(devices)}"],
                          "attributes": {"floor": 2, "line": i % 7},
                          "location": {"latitude": 48.85 + (i % 100) / 1000,
                                       "longitude": 2.35 + (i % 50) / 1000}}, auth))
        else:
            jobs.append(("PUT", f"/api/v1/devices/{dev_id}/config", sample_config(i), auth))
    return jobs


def events_page(args, run, column, base, proc, devices, auth, warnings):
    """Pre-fills about --events events (the registrations, then
    configuration and metadata changes), waits for the event writer,
    checks one page, then measures GET /events?limit=100."""
    made = len(devices) + 1  # device.registered each, user.registered
    t0 = time.time()
    in_parallel(base, event_jobs(devices, auth, max(args.events - made, 0)))
    expected = max(args.events, made)
    stored, summary, waited = wait_events(base, auth, expected)
    prefill = {"events_expected": expected, "requests_seconds": round(time.time() - t0 - waited, 2),
               "events_counted": stored, "waited_for_writer_seconds": waited, "summary": summary}
    if stored < expected:
        warnings.append(f"{column.name} events_page: {stored} events counted, "
                        f"{expected} expected (dropped by a full queue?)")
    conn = connect(base)
    try:
        status, _, doc = request(conn, "GET", f"/api/v1/events?limit={args.page}", None, auth)
    finally:
        conn.close()
    expect(status, (200,), "GET /api/v1/events", doc)
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list) or len(events) != min(args.page, stored):
        raise SetupFailed(f"GET /api/v1/events?limit={args.page}: "
                          f"{len(events) if isinstance(events, list) else 'no'} events, "
                          f"expected {min(args.page, stored)}")
    print(f"  events page ({stored} events) ...", end="", flush=True)
    res = measure(run, column, base, proc, "events_page.lua", args.duration, "/api/v1/events",
                  {"BENCH_TOKEN": auth["Authorization"].split(" ", 1)[1],
                   "BENCH_LIMIT": str(args.page)})
    print(flush=True)
    res["prefill"] = prefill
    res["sample"] = {"events": len(events), "body_bytes": len(json.dumps(doc))}
    return res


# ---- a column ---------------------------------------------------------------------

SCENARIOS = ("ingest_rules", "config_get", "events_page")


def run_column(args, binary, column, checks, warnings):
    print(f"bench docs: {column.label}", flush=True)
    out = {"documents": column.label, "results": {}}
    for scenario in SCENARIOS:
        try:
            with fresh_server(args, binary, column, scenario, checks, warnings) as \
                    (proc, base, devices, auth):
                run = core.Runner(args, devices, int(time.time() * 1000))
                if scenario == "ingest_rules":
                    res = ingest_rules(args, run, column, base, proc, devices, auth)
                elif scenario == "config_get":
                    res = config_get(args, run, column, base, proc, devices, auth)
                else:
                    res = events_page(args, run, column, base, proc, devices, auth, warnings)
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
    for label, r in wrk_runs(column):
        if r["non_2xx"]:
            checks.append(f"{name} {label}: {r['non_2xx']} non-2xx answers")
        if any(r["socket_errors"].values()):
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


def print_tables(report):
    cols = report["columns"]
    for name, c in cols.items():
        print(f"\n{c['documents']}")
        print(f"{'run':<34}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'non2xx':>7}"
              f"  {'cpu srv/store/wrk/other':>23}")
        for label, r in wrk_runs(c):
            cpu = r["cpu_cores"]
            store = f"{cpu['store']:.2f}" if "store" in cpu else "-"
            print(f"{label:<34}{r['requests_per_s']:>9.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
                  f"{r['non_2xx']:>7}  {cpu['server']:>8.2f}/{store}/{cpu['wrk']:.2f}/"
                  f"{cpu['other']:.2f}")
        ing = c["results"].get("ingest_rules")
        if ing:
            print("ingest ratios with rules / without, per round: "
                  + ", ".join(f"{r['ratio_quiet']:.3f}" for r in ing["rounds"])
                  + (" (flapping: " + ", ".join(f"{r['ratio_flapping']:.3f}"
                                                for r in ing["rounds"]) + ")"
                     if ing["median_ratio_flapping"] is not None else ""))
            a = ing["rounds"][-1].get("rules_flapping", ing["rounds"][-1]["rules_quiet"])
            if a.get("alerting_after"):
                print(f"alert engine at the end: {a['alerting_after']}")
    names = list(cols)
    print(f"\n{'goal':<40}" + "".join(f"{cols[n]['documents'].split(':')[0]:>22}" for n in names)
          + "  target")
    by = {(g["goal"], g["column"]): g for g in report["goals"]}
    for key, what, *_ in GOALS:
        row = f"{what:<40}"
        target = ""
        for n in names:
            g = by[(key, n)]
            verdict = {True: "met", False: "MISSED", None: "-"}[g["met"]]
            row += f"{fmt(g['value']) + ' ' + verdict:>22}"
            target = g["target"]
        print(row + "  " + target)
    for n in names:
        ing = cols[n]["results"].get("ingest_rules")
        if ing and ing["median_ratio_flapping"] is not None:
            print(f"{n}: with one rule firing and resolving itself on every other message, "
                  f"median ratio {ing['median_ratio_flapping']:.3f} (no goal)")
    m = report["machine"]
    print(f"machine: {m['nproc']} x {m['cpu_model']}, {m['memory_mb']} MB, kernel {m['kernel']}; "
          "cpu columns in cores (wrk, server and the store share them)")


# ---- the run ----------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/iotflowd", help="iotflowd to measure")
    ap.add_argument("--duration", type=int, default=10,
                    help="seconds of the config and events scenarios")
    ap.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--devices", type=int, default=100, help="devices, round-robin over requests")
    ap.add_argument("--pairs", type=int, default=3,
                    help="ingest rounds without and with rules, for a median ratio")
    ap.add_argument("--pair-duration", type=int, default=5, help="seconds per ingest run")
    ap.add_argument("--no-flap", action="store_true",
                    help="skip the ingest variant where a rule fires and resolves repeatedly")
    ap.add_argument("--events", type=int, default=3000, help="events in the log before the page")
    ap.add_argument("--page", type=int, default=100, help="events per page")
    ap.add_argument("--no-ferretdb", action="store_true",
                    help="skip the column with documents on MONGODB_URL")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.set_defaults(batch_size=1)  # core.Runner passes it to every script; unused here
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run scripts/deps.sh")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} is missing: run `make build`")

    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.time()
    info = core.machine()
    dirty = core.git("status", "--porcelain", "--untracked-files=no")
    mongodb_url = os.environ.get("MONGODB_URL", "")
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": info,
        "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        "cwd": os.getcwd(),
        "settings": {**vars(args), "binary": binary, "wrk_timeout_s": 10,
                     "server_threads": 2 * (os.cpu_count() or 1), "mongodb_url": mongodb_url,
                     "durability": "commit = in the WAL via write(2), no fsync "
                                   "(process-crash safe)"},
        "iotflowd": {"commit": core.git("rev-parse", "--short", "HEAD"),
                     "dirty": bool(dirty), "changed_files": len(dirty.splitlines()) if dirty else 0,
                     "binary_sha256": core.sha256_file(binary)},
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
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "docs-" + started.strftime("%Y-%m-%dT%H%M%SZ") + ".json")
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


if __name__ == "__main__":
    main()
