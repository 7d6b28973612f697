"""bench/mqtt.py — iotflowd's MQTT listener under QoS 1 load, beside
Mosquitto (the ceiling) and iotflowd's HTTP single-message ingest, in one run.

Starts iotflowd (embedded stores, temporary data dir, its MQTT listener on a
free loopback port) and Debian's Mosquitto (a temporary config: loopback,
anonymous, no persistence, no in-flight or queue limits), registers a user
and one device per MQTT connection (plus as many for HTTP), then runs
`--rounds` rounds of three measurements back to back, the order reversed
every other round:

  mqtt       build/mqtt_load against iotflowd: every connection a device
             (password = its key), a window of QoS 1 PUBLISHes in flight on
             devices/me/telemetry; acknowledged (PUBACKed) messages/s
  mosquitto  the same load against Mosquitto, which relays every message
             in memory to one subscriber that mqtt_load also opens
  http       wrk with ingest_single.lua (bench/run.py's single ingest)

and reports each round's ratios mqtt/mosquitto (goal >= 0.5) and
mqtt/http (goal >= 1) and their medians: alternating rounds cancel most of
what the rest of this shared machine does to one side. After every mqtt
round, and over all of them at the end, iotflowd must have stored exactly
the messages it acknowledged. Writes bench/results/mqtt-<UTC date-time>.json.

Usage: .venv/bin/python bench/mqtt.py [--binary build/iotflowd] [--rounds 5] [--seconds 5]
                                     [--connections 32] [--window 32] ...
Exit status 1 when a check failed (the results file is written anyway).
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import run as bench  # bench/run.py: servers, devices, wrk, machine, checks

TOPIC = "devices/me/telemetry"
TARGETS = ("mqtt", "mosquitto", "http")


def mosquitto_binary():
    path = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(path, os.X_OK):
        sys.exit("mosquitto is missing: run scripts/deps.sh")
    return path


def wait_port(port, proc, what, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} is not listening on {port}")


def start_mosquitto(binary, work_dir):
    """Mosquitto on a free loopback port, in memory: (process, port)."""
    port = bench.free_port()
    conf = os.path.join(work_dir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence false\n"
                "max_inflight_messages 0\n"   # 0 = no limit (outgoing QoS 1)
                "max_queued_messages 0\n"     # 0 = no limit: drop nothing
                # set_tcp_nodelay stays off (its default): on, it relayed
                # 10-15 % fewer messages/s here
                "log_dest stderr\nlog_type error\nlog_type warning\n")
    log = open(os.path.join(work_dir, "mosquitto.log"), "w")
    proc = subprocess.Popen([binary, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    wait_port(port, proc, "mosquitto")
    return proc, port


def mosquitto_version(binary):
    out = subprocess.run([binary, "-h"], capture_output=True, text=True)
    return next((l.strip() for l in (out.stdout + out.stderr).splitlines() if "version" in l), "")


class Load:
    """Runs build/mqtt_load and measures the CPU the server and it used."""

    def __init__(self, args, load_binary):
        self.args, self.binary = args, load_binary

    def run(self, port, server_pid, passwords=None, subscribe=None):
        a = self.args
        cmd = [self.binary, "--port", str(port), "--connections", str(a.connections),
               "--window", str(a.window), "--threads", str(a.load_threads),
               "--duration", str(a.seconds), "--warmup", str(a.warmup), "--topic", TOPIC]
        if passwords:
            cmd += ["--passwords", passwords]
        if subscribe is not None:
            cmd += ["--subscribe", str(subscribe)]
        srv0, kids0, m0 = (bench.proc_cpu_s(server_pid), bench.children_cpu_s(),
                           bench.machine_cpu_s())
        out = subprocess.run(cmd, capture_output=True, text=True)
        srv1, kids1, m1 = (bench.proc_cpu_s(server_pid), bench.children_cpu_s(),
                           bench.machine_cpu_s())
        try:
            res = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            sys.exit(f"mqtt_load failed ({out.returncode}): {' '.join(cmd)}\n"
                     f"{out.stdout}\n{out.stderr}")
        # whole run (warm-up and drain too): cores = CPU seconds / wall seconds
        wall = (m1["total"] - m0["total"]) / (os.cpu_count() or 1)
        res["exit_status"] = out.returncode
        res["stderr"] = out.stderr.strip()[-2000:]
        res["cpu_cores"] = {"server": round((srv1 - srv0) / wall, 2),
                            "mqtt_load": round((kids1 - kids0) / wall, 2),
                            "irq": round((m1["irq"] - m0["irq"]) / wall, 2)}
        res["command"] = " ".join(shlex.quote(c) for c in cmd)
        return res


def stored_messages(base, devices):
    """Messages stored per device, summed, over HTTP: each device's count of
    its `temperature` values (every message has one) in one-day windows
    over the past two days."""
    total = 0
    for dev_id, key in devices:
        _, body = bench.call(base, "GET", f"/api/v1/telemetry/{dev_id}/aggregated"
                             "?field=temperature&aggregation=count&window=1d&start_time=-2d",
                             headers={"X-API-Key": key})
        total += sum(int(w["value"]) for w in body["data"])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/iotflowd", help="iotflowd to measure")
    ap.add_argument("--load", default=None, help="the load generator (default: mqtt_load next "
                    "to --binary)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5,
                    help="measured seconds per target and round")
    ap.add_argument("--warmup", type=float, default=1, help="MQTT seconds before counting")
    ap.add_argument("--connections", type=int, default=32, help="MQTT connections = devices; "
                    "also wrk's connections")
    ap.add_argument("--window", type=int, default=32,
                    help="QoS 1 PUBLISHes in flight per connection")
    ap.add_argument("--load-threads", type=int, default=2, help="mqtt_load threads")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--sub-qos", type=int, default=0, choices=(0, 1),
                    help="QoS of Mosquitto's subscriber")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated subset of mqtt,mosquitto,http")
    ap.add_argument("--out-dir", default=os.path.join(bench.HERE, "results"))
    args = ap.parse_args()
    args.batch_size = 1  # what bench.Runner hands the wrk scripts
    targets = [t for t in args.targets.split(",") if t]
    if not targets or set(targets) - set(TARGETS):
        sys.exit(f"--targets: a subset of {','.join(TARGETS)}")
    binary = os.path.abspath(args.binary)
    load = os.path.abspath(args.load or os.path.join(os.path.dirname(binary), "mqtt_load"))
    for b in (binary, load):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: run `make build`")
    if "http" in targets and not shutil.which("wrk"):
        sys.exit("wrk is missing: run scripts/deps.sh")
    mosq = mosquitto_binary() if "mosquitto" in targets else None

    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.time()
    info = bench.machine()
    if info["load_average_at_start"][0] > 0.5:
        print(f"note: load average {info['load_average_at_start'][0]:.2f} at start: "
              "something else is using the CPUs", flush=True)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": info,
        "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        "cwd": os.getcwd(),
        "settings": {**vars(args), "binary": binary, "load": load, "topic": TOPIC,
                     "payload": '{"data":{"temperature":21.5,"humidity":40,"seq":N}}',
                     "mqtt_version": "3.1.1", "qos": 1,
                     "durability": "iotflowd: PUBACK after the commit to the WAL via write(2), "
                                   "no fsync; Mosquitto: in memory, no persistence"},
        "iotflowd": bench.build_of(binary),
        "mosquitto": mosquitto_version(mosq) if mosq else None,
        "notes": [
            f"the servers, mqtt_load and wrk share the machine's {os.cpu_count()} CPUs "
            "over loopback",
            "Mosquitto is single-threaded; iotflowd runs IOTFLOW_MQTT_THREADS event loops",
            "mqtt counts from --warmup seconds after the connections opened; wrk from its start",
        ],
        "rounds": [],
    }
    checks, warnings = [], []
    work_dir = tempfile.mkdtemp(prefix="iotflow-mqtt-bench-")
    proc = mosq_proc = None
    try:
        mqtt_port = bench.free_port()
        # start_server's last argument is extra environment (named for the
        # store URLs it usually carries)
        proc, base = bench.start_server(binary, work_dir, False,
                                        {"IOTFLOW_MQTT_PORT": str(mqtt_port)})
        mqtt_devices = bench.setup_devices(base, args.connections)
        auth = bench.login(base)
        http_devices = []
        for i in range(args.connections):  # their own devices: the mqtt count stays exact
            d = bench.call(base, "POST", "/api/v1/devices/register",
                           {"name": f"http-{i}", "device_type": "sensor"}, auth)[1]["device"]
            http_devices.append((d["id"], d["api_key"]))
        passwords = os.path.join(work_dir, "passwords")
        with open(passwords, "w") as f:
            f.writelines(f"{key}\n" for _, key in mqtt_devices)
        if "mqtt" in targets:
            wait_port(mqtt_port, proc, "iotflowd's MQTT listener")
        if mosq:
            mosq_proc, mosq_port = start_mosquitto(mosq, work_dir)
        loader = Load(args, load)
        wrk = bench.Runner(args, http_devices, int(time.time() * 1000) - 3_600_000)
        mqtt_acked = 0

        def measure(target):
            if target == "mqtt":
                before = bench.tm_status(base)["total_messages"]
                r = loader.run(mqtt_port, proc.pid, passwords=passwords)
                stored = bench.settle(base)["total_messages"] - before
                r["check"] = {"acknowledged": r["acked_total"], "stored": stored,
                              "ok": stored == r["acked_total"]}
                return r, r["acked_per_s"]
            if target == "mosquitto":
                r = loader.run(mosq_port, mosq_proc.pid, subscribe=args.sub_qos)
                return r, r["acked_per_s"]
            r = wrk.wrk(base + "/api/v1/telemetry", "ingest_single.lua", args.seconds, proc.pid)
            return r, r["ok_requests_per_s"]

        for i in range(args.rounds):
            order = targets if i % 2 == 0 else targets[::-1]
            rnd, rates = {"order": order}, {}
            for t in order:
                rnd[t], rates[t] = measure(t)
                problem = round_problem(t, rnd[t])
                if problem:
                    checks.append(f"round {i + 1} {t}: {problem}")
                if t == "mqtt":
                    mqtt_acked += rnd[t]["acked_total"]
                time.sleep(0.5)
            rnd["rates"] = rates
            rnd["ratios"] = ratios_of(rates)
            report["rounds"].append(rnd)
            print(f"round {i + 1}: " + ", ".join(f"{t} {rates[t]:.0f}" for t in targets)
                  + " msg/s" + "".join(f"; {k} {v:.3f}" for k, v in rnd["ratios"].items()),
                  flush=True)
        if "mqtt" in targets:
            stored = stored_messages(base, mqtt_devices)
            report["store_check"] = {"acknowledged_over_mqtt": mqtt_acked,
                                     "stored_on_mqtt_devices": stored, "ok": stored == mqtt_acked}
            if stored != mqtt_acked:
                checks.append(f"iotflowd acknowledged {mqtt_acked} messages over MQTT "
                              f"but its devices hold {stored}")
        report["server_log_tail"] = bench.log_tail(os.path.join(work_dir, "iotflowd.log"))
        if mosq_proc:
            report["mosquitto_log_tail"] = bench.log_tail(os.path.join(work_dir, "mosquitto.log"))
    finally:
        bench.stop(proc)
        bench.stop(mosq_proc)
        shutil.rmtree(work_dir, ignore_errors=True)

    report["medians"] = medians(report["rounds"], targets)
    goals = {"mqtt_vs_mosquitto": 0.5, "mqtt_vs_http": 1.0}
    report["goals"] = {k: {"goal": g, "median": report["medians"]["ratios"].get(k),
                           "met": (report["medians"]["ratios"].get(k) or 0) >= g}
                       for k, g in goals.items() if k in report["medians"]["ratios"]}
    for k, g in report["goals"].items():
        if not g["met"]:
            warnings.append(f"{k} median {g['median']} is below the goal {g['goal']}")
    report["checks"] = {"ok": not checks, "problems": checks, "warnings": warnings}
    report["total_seconds"] = round(time.time() - t_start, 1)
    print_summary(report, targets)
    out = os.path.join(args.out_dir, f"mqtt-{started.strftime('%Y-%m-%dT%H%M%SZ')}.json")
    bench.finish(report, out, checks, warnings)


def round_problem(target, r):
    """What makes one measurement unusable, or None."""
    if target == "http":
        if r["non_2xx"] or any(r["socket_errors"].values()):
            return f"non-2xx {r['non_2xx']}, socket errors {r['socket_errors']}"
        return None
    if r["exit_status"] != 0 or r["connections_lost"] or r["unexpected_packets"]:
        return (f"mqtt_load status {r['exit_status']}, {r['connections_lost']} connections lost, "
                f"{r['unacked_at_end']} never acknowledged, {r['unexpected_packets']} unexpected "
                f"packets {r['stderr']}")
    if target == "mqtt" and not r["check"]["ok"]:
        return f"acknowledged {r['check']['acknowledged']} but stored {r['check']['stored']}"
    if target == "mosquitto" and r["subscriber"]["received_total"] != r["acked_total"]:
        return (f"the subscriber got {r['subscriber']['received_total']} of "
                f"{r['acked_total']} messages")
    return None


def ratios_of(rates):
    out = {}
    if "mqtt" in rates and rates.get("mosquitto"):
        out["mqtt_vs_mosquitto"] = round(rates["mqtt"] / rates["mosquitto"], 3)
    if "mqtt" in rates and rates.get("http"):
        out["mqtt_vs_http"] = round(rates["mqtt"] / rates["http"], 3)
    return out


def median(values):
    v = sorted(values)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else round((v[len(v) // 2 - 1] + v[len(v) // 2]) / 2, 3)


def medians(rounds, targets):
    keys = {k for r in rounds for k in r["ratios"]}
    return {"rates": {t: median([r["rates"][t] for r in rounds]) for t in targets},
            "ratios": {k: median([r["ratios"][k] for r in rounds]) for k in sorted(keys)},
            "ratio_ranges": {k: [min(r["ratios"][k] for r in rounds),
                                 max(r["ratios"][k] for r in rounds)] for k in sorted(keys)}}


def print_summary(report, targets):
    m = report["medians"]
    print(f"\nmedian over {len(report['rounds'])} rounds (acknowledged messages/s):")
    for t in targets:
        print(f"  {t:10s} {m['rates'][t]:>10.0f}")
    for k, v in m["ratios"].items():
        lo, hi = m["ratio_ranges"][k]
        goal = report["goals"][k]
        print(f"  {k:18s} {v:.3f}  (rounds {lo:.3f}-{hi:.3f}; goal >= {goal['goal']}: "
              f"{'met' if goal['met'] else 'NOT met'})")
    if "store_check" in report:
        s = report["store_check"]
        print(f"  stored {s['stored_on_mqtt_devices']} of {s['acknowledged_over_mqtt']} "
              f"acknowledged: {'ok' if s['ok'] else 'MISMATCH'}")
    mach = report["machine"]
    print(f"  machine: {mach['nproc']} x {mach['cpu_model']}")


if __name__ == "__main__":
    main()
