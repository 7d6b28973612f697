#!/usr/bin/python3
"""bench/run.py — load test of iotflowd with wrk, in one run.

Starts iotflowd (embedded stores, temporary data dir) on a free port, creates
a user and devices, then drives each scenario with wrk over keep-alive
connections and prints a table. Results go to bench/results/<date>.json with
the machine (nproc, CPU model) and the exact command, so runs can be compared.

Usage: bench/run.py [--binary build/iotflowd] [--duration 10] [--connections 32]
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def start_server(binary, data_dir):
    port = free_port()
    env = dict(os.environ, IOTFLOW_PORT=str(port), IOTFLOW_DATA_DIR=data_dir,
               IOTFLOW_ADMIN_TOKEN="bench", IOTFLOW_AUTH_RATE_LIMIT="0", IOTFLOW_LOG_LEVEL="warn")
    proc = subprocess.Popen([binary], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            call(base, "GET", "/health")
            return proc, base
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("iotflowd did not start")


def setup_devices(base, n):
    call(base, "POST", "/api/v1/auth/register",
         {"username": "bench", "email": "bench@example.com", "password": "bench-password"})
    token = call(base, "POST", "/api/v1/auth/login",
                 {"username": "bench", "password": "bench-password"})["token"]
    auth = {"Authorization": f"Bearer {token}"}
    return [call(base, "POST", "/api/v1/devices/register", {"name": f"dev-{i}"}, auth)
            ["device"]["api_key"] for i in range(n)]


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        lat[f"p{pct}_ms"] = round(float(val) * UNITS[unit], 3)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return {"requests_per_s": rps, **lat, "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def run_wrk(base, path, script, keys, args):
    env = dict(os.environ, BENCH_KEYS=",".join(keys), BENCH_DIR=HERE)
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
           "--latency", "-s", os.path.join(HERE, script), base + path]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


SCENARIOS = [
    # name, path, wrk script
    ("health", "/health", "get.lua"),
    ("heartbeat", "/api/v1/devices/heartbeat", "heartbeat.lua"),
    ("device_status", "/api/v1/devices/status", "device_get.lua"),
]


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/iotflowd")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--devices", type=int, default=100)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run scripts/deps.sh")
    data_dir = tempfile.mkdtemp(prefix="iotflow-bench-")
    proc, base = start_server(os.path.abspath(args.binary), data_dir)
    try:
        keys = setup_devices(base, args.devices)
        results = {name: run_wrk(base, path, script, keys, args) for name, path, script in SCENARIOS}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"{'scenario':<16}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}")
    for name, r in results.items():
        print(f"{name:<16}{r['requests_per_s']:>12.0f}{r.get('p50_ms', 0):>10.2f}"
              f"{r.get('p99_ms', 0):>10.2f}{r['non_2xx']:>9}")
    now = datetime.datetime.now(datetime.timezone.utc)
    report = {"date": now.isoformat(timespec="seconds"), "machine": machine(),
              "command": " ".join([sys.argv[0]] + sys.argv[1:]),
              "settings": vars(args), "results": results}
    out = os.path.join(HERE, "results", now.strftime("%Y-%m-%dT%H%M%SZ") + ".json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"written {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
