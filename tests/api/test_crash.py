"""Durability of acknowledged telemetry across a crash.

A server on its own data directory is hammered by 8 threads posting single
messages and batches, each message carrying a unique (cycle, thread, seq);
every message whose request was answered 201 is recorded. While requests
are in flight the server gets SIGKILL, a new server starts on the SAME data
directory, and everything is read back: every acknowledged message must be
there, none twice, and nothing that was never sent. Two kill cycles run in
a row."""
import collections
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import requests

from conftest import API, Server, describe, expect, fresh_backends, make_user, register_device

THREADS = 8
DEVICES = 4
RUN_SECONDS = 3.0
CYCLES = 2


class Load:
    """THREADS posters against one server incarnation."""

    def __init__(self, base, keys, cycle):
        self.base, self.keys, self.cycle = base, keys, cycle
        self.stop = threading.Event()
        self.killed = threading.Event()
        self.lock = threading.Lock()
        self.acked = set()        # (cycle, thread, seq) answered 201
        self.sent = set()         # everything that was ever sent
        self.statuses = collections.Counter()
        self.problems = []        # unexpected answers before the kill

    def _run(self, t):
        session = requests.Session()
        key = self.keys[t % len(self.keys)]
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        seq, i = 0, 0
        while not self.stop.is_set():
            i += 1
            if i % 8 == 0:
                n = 2 + (i // 8) % 19
                msgs = [{"data": {"cycle": self.cycle, "thread": t, "seq": seq + k}}
                        for k in range(n)]
                ids = [(self.cycle, t, seq + k) for k in range(n)]
                url, body = self.base + API + "/telemetry/batch", msgs
            else:
                ids = [(self.cycle, t, seq)]
                url, body = self.base + API + "/telemetry", {
                    "data": {"cycle": self.cycle, "thread": t, "seq": seq}}
            seq += len(ids)
            with self.lock:
                self.sent.update(ids)
            try:
                r = session.post(url, json=body, headers=headers, timeout=30)
            except requests.RequestException as e:
                if not self.killed.is_set():
                    with self.lock:
                        self.problems.append(f"thread {t}: {type(e).__name__} before the kill: {e}")
                return
            with self.lock:
                self.statuses[r.status_code] += 1
                if r.status_code == 201:
                    self.acked.update(ids)
                elif r.status_code != 503 and not self.killed.is_set():
                    self.problems.append(f"thread {t}: unexpected answer\n{describe(r)}")
                    return

    def run_then_kill(self, server):
        threads = [threading.Thread(target=self._run, args=(t,), daemon=True)
                   for t in range(THREADS)]
        for th in threads:
            th.start()
        time.sleep(RUN_SECONDS)
        assert server.alive(), f"server died under load; stderr:\n{server.stderr()[-3000:]}"
        self.killed.set()
        server.proc.kill()            # SIGKILL, requests in flight
        server.proc.wait(timeout=30)
        self.stop.set()
        for th in threads:
            th.join(timeout=60)
        assert not any(th.is_alive() for th in threads), "a poster thread hung after the kill"


def read_back(server, devices, user):
    """Every stored message of the test's devices, paging newest first."""
    found = []
    for d in devices:
        cursor = None
        while True:
            params = {"start_time": "-1d", "end_time": "now", "limit": 10000}
            if cursor:
                params["cursor"] = cursor
            r = server.admin.get(f"/telemetry/{d['id']}", params=params)
            body = expect(r, 200)
            for rec in body["data"]:
                m = rec["measurements"]
                found.append((m["cycle"], m["thread"], m["seq"]))
            cursor = body["next_cursor"]
            if not cursor:
                break
    return found


def check(server, devices, user, loads):
    found = read_back(server, devices, user)
    counts = collections.Counter(found)
    dups = sorted(k for k, n in counts.items() if n > 1)
    acked = set().union(*(ld.acked for ld in loads))
    sent = set().union(*(ld.sent for ld in loads))
    missing = sorted(acked - set(counts))
    phantom = sorted(set(counts) - sent)
    summary = (f"acked {len(acked)}, sent {len(sent)}, stored {len(found)} "
               f"({len(counts)} distinct); statuses per cycle "
               f"{[dict(ld.statuses) for ld in loads]}")
    assert not missing, (f"{len(missing)} acknowledged messages lost after SIGKILL "
                         f"(first {missing[:20]}); {summary}")
    assert not dups, f"{len(dups)} messages stored twice (first {dups[:20]}); {summary}"
    assert not phantom, f"{len(phantom)} stored messages were never sent: {phantom[:20]}"
    # the per-user view and the store totals agree with what is there
    body = expect(server.admin.get(f"/telemetry/user/{user.user_id}",
                                   params={"start_time": "-1d", "limit": 1}), 200)
    assert body["total_count"] == len(found), f"user total_count {body['total_count']} != {len(found)}"
    # latest values (rebuilt from the store after the crash) match the newest message
    for d in devices:
        r = server.admin.get(f"/telemetry/{d['id']}", params={"start_time": "-1d", "limit": 1})
        newest = expect(r, 200)["data"]
        if not newest:
            continue
        r = server.admin.get(f"/telemetry/{d['id']}/latest")
        latest = expect(r, 200)
        assert latest["timestamp"] == newest[0]["timestamp"], \
            f"latest {latest['timestamp']} != newest stored {newest[0]['timestamp']}\n{describe(r)}"
    st = expect(server.admin.get("/telemetry/status"), 200)  # totals: admin only
    assert st["status"] == "healthy", st
    assert st["total_messages"] == len(found), f"status total_messages {st['total_messages']} != {len(found)}"
    return summary


def test_acknowledged_telemetry_survives_sigkill():
    root = Path(tempfile.mkdtemp(prefix="iotflowd-crash-"))
    data_dir = root / "data"
    token = secrets.token_hex(16)
    env = {"IOTFLOW_DEVICE_RATE_LIMIT": "0"}
    backends = fresh_backends()   # every incarnation on the same registry and cache
    incarnations = []

    def launch():
        s = Server(data_dir=data_dir, admin_token=token, env=env, backends=backends)
        incarnations.append(s)
        return s.start()

    try:
        server = launch()
        user = make_user(server, "bearer")
        devices = [register_device(user) for _ in range(DEVICES)]
        keys = [d["api_key"] for d in devices]
        loads = []
        for cycle in range(CYCLES):
            load = Load(server.base, keys, cycle)
            loads.append(load)
            load.run_then_kill(server)
            assert not load.problems, "\n".join(load.problems[:10])
            assert len(load.acked) >= 50, \
                f"cycle {cycle}: only {len(load.acked)} messages acknowledged in {RUN_SECONDS}s"
            server = launch()          # same data directory
            health = server.root.get("/health", params={"detailed": "true"},
                                     headers=server.admin_headers)   # details: admin only
            hb = expect(health, 200)
            assert hb["status"] == "healthy", describe(health)
            sick = {k: v for k, v in hb["checks"].items() if not v.get("healthy")}
            assert not sick, f"unhealthy after restart: {sick}\n{describe(health)}"
            print(f"cycle {cycle}: " + check(server, devices, user, loads))
            # the restarted server takes telemetry again with the old keys
            r = server.api.post("/telemetry", json={"data": {"cycle": -1, "thread": -1, "seq": cycle}},
                                headers={"X-API-Key": keys[0]})
            expect(r, 201)
            loads.append(_Marker(cycle))
        server.stop_and_check()
    finally:
        for s in incarnations:
            if s.alive():
                s.proc.kill()
                s.proc.wait()
    shutil.rmtree(root, ignore_errors=True)


class _Marker:
    """The one message posted after each restart, acknowledged on its own."""

    def __init__(self, cycle):
        self.acked = self.sent = {(-1, -1, cycle)}
        self.statuses = {201: 1}
