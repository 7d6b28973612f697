"""bench/ab.py — one scenario against two iotflowd binaries, in alternating
rounds, for what a change costs on a noisy machine.

Starts both binaries on the embedded stores (each its own data dir and
port, the same devices), then runs `--rounds` rounds of the scenario with
wrk, the baseline first then the candidate, back to back; reports each
round's ratio (candidate / baseline requests per second) and their median.
Alternating rounds cancel most of what the rest of the machine does to the
two. Writes bench/results/ab-<UTC date-time>.json (machine, command,
builds, every round).

Usage: .venv/bin/python bench/ab.py --baseline OLD/iotflowd [--candidate build/iotflowd]
                                    [--scenario ingest_single] [--rounds 7] [--seconds 5]
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import sys
import tempfile
import time

import run as bench  # bench/run.py: server start, devices, wrk runner

# name: (path, wrk script). Scenarios that need no stored history (the
# read ones of run.py need its pre-fill).
SCENARIOS = {
    "ingest_single": ("/api/v1/telemetry", "ingest_single.lua"),
    "health": ("/health", "get.lua"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="the iotflowd to compare against")
    ap.add_argument("--candidate", default="build/iotflowd", help="the iotflowd measured")
    ap.add_argument("--scenario", default="ingest_single", choices=sorted(SCENARIOS))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=int, default=5, help="per binary and round")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--out-dir", default=os.path.join(bench.HERE, "results"))
    args = ap.parse_args()
    args.batch_size = 1  # what Runner passes to the wrk scripts
    path, script = SCENARIOS[args.scenario]
    started = datetime.datetime.now(datetime.timezone.utc)
    report = {"date": started.isoformat(timespec="seconds"), "machine": bench.machine(),
              "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
              "settings": vars(args),
              "baseline": bench.build_of(os.path.abspath(args.baseline)),
              "candidate": bench.build_of(os.path.abspath(args.candidate)), "rounds": []}
    dirs, procs = [], []
    try:
        servers = []
        for binary in (args.baseline, args.candidate):
            dirs.append(tempfile.mkdtemp(prefix="iotflow-ab-"))
            proc, base = bench.start_server(os.path.abspath(binary), dirs[-1], False)
            procs.append(proc)
            servers.append((proc, base, bench.setup_devices(base, args.devices)))
        for i in range(args.rounds):
            rates = []
            for proc, base, devices in servers:
                runner = bench.Runner(args, devices, int(time.time() * 1000) - 3_600_000)
                res = runner.wrk(base + path, script, args.seconds, proc.pid)
                if res["non_2xx"] or any(res["socket_errors"].values()):
                    sys.exit(f"round {i + 1}: errors {res['non_2xx']} {res['socket_errors']}")
                rates.append(res["requests_per_s"])
                time.sleep(0.5)
            ratio = round(rates[1] / rates[0], 3)
            report["rounds"].append({"baseline_rps": rates[0], "candidate_rps": rates[1],
                                     "ratio": ratio})
            print(f"round {i + 1}: baseline {rates[0]:.0f}, candidate {rates[1]:.0f} req/s, "
                  f"ratio {ratio:.3f}", flush=True)
    finally:
        for p in procs:
            bench.stop(p)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    ratios = sorted(r["ratio"] for r in report["rounds"])
    report["median_ratio"] = ratios[len(ratios) // 2]
    print(f"{args.scenario}: median ratio candidate/baseline {report['median_ratio']:.3f} "
          f"over {len(ratios)} rounds (min {ratios[0]:.3f}, max {ratios[-1]:.3f})")
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, f"ab-{started.strftime('%Y-%m-%dT%H%M%SZ')}.json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
