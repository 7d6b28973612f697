"""bench/cql/run.py — our CQL client (build/cql_bench) beside the reference
driver (bench/cql/reference.py) on the same workload, same server, same run:
rounds alternate between the two so that a noisy neighbour hurts both alike.
Writes bench/results/cql-<UTC date-time>.json (machine, command, every
round, medians, ratios). Needs CASSANDRA_HOSTS (`make bench-cql` starts the
server with scripts/services.sh).

Usage: .venv/bin/python bench/cql/run.py [--binary build/cql_bench] [--n 100000] [--window 256] [--rounds 3]
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo")
                  if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu_model": model, "memory_mb": mem_kb // 1024,
            "kernel": platform.release(), "load_average_at_start": os.getloadavg()}


def run_client(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "cql_bench"))
    ap.add_argument("--n", type=int, default=100000, help="inserts, then as many point reads")
    ap.add_argument("--window", type=int, default=256, help="requests in flight")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    if not os.environ.get("CASSANDRA_HOSTS"):
        sys.exit('set CASSANDRA_HOSTS (eval "$(scripts/services.sh start cassandra)")')
    started = datetime.datetime.now(datetime.timezone.utc)
    ours_cmd = [args.binary, str(args.n), str(args.window), "1"]
    ref_cmd = [sys.executable, os.path.join(HERE, "reference.py"), str(args.n),
               str(args.window), "1"]
    # One unrecorded warm-up of the server's JIT, then alternating rounds.
    run_client([args.binary, str(min(args.n, 20000)), str(args.window), "1"])
    rounds = []
    for r in range(args.rounds):
        for name, cmd in (("iotcql", ours_cmd), ("python-driver", ref_cmd)):
            res = run_client(cmd)
            res["round"] = r + 1
            rounds.append(res)
            print(f"round {r + 1} {name:<14} inserts/s {res['insert_per_s']:>9.0f}   "
                  f"reads/s {res['read_per_s']:>9.0f}", flush=True)

    def median(client, field):
        return statistics.median(x[field] for x in rounds if x["client"].startswith(client))

    summary = {c: {f: median(c, f) for f in ("insert_per_s", "read_per_s", "insert_p99_ms",
                                               "read_p99_ms")}
               for c in ("iotcql", "python-driver")}
    ratios = {f"{f}_ours_vs_reference": round(summary["iotcql"][f] / summary["python-driver"][f], 2)
              for f in ("insert_per_s", "read_per_s")}
    report = {"date": started.isoformat(timespec="seconds"), "machine": machine(),
              "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
              "server": {"cassandra_hosts": os.environ["CASSANDRA_HOSTS"],
                         "note": "Apache Cassandra 5.0.8 from Maven Central, scripts/services.sh, "
                                 "one node, on the same 2 cores as the clients"},
              "workload": "bench/cql/README.md", "n": args.n, "window": args.window,
              "rounds": rounds, "median": summary, "ratios": ratios}
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "cql-" + started.strftime("%Y-%m-%dT%H%M%SZ") + ".json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"median: ours {summary['iotcql']['insert_per_s']:.0f} inserts/s, "
          f"{summary['iotcql']['read_per_s']:.0f} reads/s; reference "
          f"{summary['python-driver']['insert_per_s']:.0f} / "
          f"{summary['python-driver']['read_per_s']:.0f}; ratios {ratios}")
    print(f"written {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
