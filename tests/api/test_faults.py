"""Server outages: Redis or PostgreSQL stopped under load and started again.

iotflowd must not crash, must answer every request with a success or a
clean 503 + Retry-After (never another 5xx), must not lose a message it
acknowledged, and must recover by itself when the server returns. Each test
runs its own private PostgreSQL and Redis (scripts/services.sh with a scratch
directory and free ports), so stopping them disturbs no other test.
Runs in the PostgreSQL + Redis pass of `make test`.
"""
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import (ROOT, SERVER_BACKENDS, Server, describe, expect, expect_error,
                      free_port, key_client, make_user, register_device)
from test_telemetry_stream import Stream

pytestmark = pytest.mark.skipif(not SERVER_BACKENDS,
                                reason="needs PostgreSQL + Redis (the second pass of make test)")

SERVICES = str(ROOT / "scripts" / "services.sh")


class Services:
    """A private PostgreSQL + Redis pair."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="iotflow-services-"))
        os.chmod(self.dir, 0o755)   # the postgres system user must reach it
        self.env = {**os.environ, "IOTFLOW_SERVICES_DIR": str(self.dir),
                    "IOTFLOW_PG_PORT": str(free_port()), "IOTFLOW_REDIS_PORT": str(free_port())}

    def run(self, action, *names):
        out = subprocess.run([SERVICES, action, *names], env=self.env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, f"services.sh {action} {names}: {out.stderr}"
        return out.stdout

    def start(self, *names):
        urls = {}
        for line in self.run("start", *names).splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            urls[name] = value.strip("'")
        return urls

    def stop(self, *names):
        self.run("stop", *names)


@pytest.fixture
def services():
    s = Services()
    yield s
    s.run("stop", "postgres", "redis")
    shutil.rmtree(s.dir, ignore_errors=True)


@pytest.fixture
def server_on(services):
    started = []

    def _start():
        urls = services.start("postgres", "redis")
        srv = Server(backends={"DATABASE_URL": urls["DATABASE_URL"], "REDIS_URL": urls["REDIS_URL"]},
                     env={"IOTFLOW_DEVICE_RATE_LIMIT": "0"}).start()
        started.append(srv)
        return srv

    yield _start
    for srv in started:
        srv.stop_and_check()
        srv.cleanup()


class Load:
    """Posts numbered messages from a few devices until stopped; records
    what was acknowledged and any answer that is neither 201 nor a clean
    503 + Retry-After."""

    def __init__(self, server, keys):
        self.server, self.keys = server, keys
        self.acked = {k: [] for k in keys}
        self.statuses = []
        self.problems = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        session = requests.Session()
        seq = 0
        while not self.stop_flag.is_set():
            key = self.keys[seq % len(self.keys)]
            seq += 1
            try:
                r = session.post(self.server.base + "/api/v1/telemetry",
                                 headers={"X-API-Key": key}, json={"data": {"seq": seq}}, timeout=10)
            except requests.RequestException as e:
                self.problems.append(f"request failed: {e!r}")
                continue
            self.statuses.append(r.status_code)
            if r.status_code == 201:
                self.acked[key].append(seq)
            elif r.status_code == 503 and r.headers.get("Retry-After"):
                time.sleep(0.05)
            else:
                self.problems.append(describe(r))
            time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=30)

    def acked_count(self):
        return sum(len(v) for v in self.acked.values())


def stored_seqs(server, device_id):
    r = server.admin.get(f"/telemetry/{device_id}", params={"start_time": "-1d", "limit": 10000})
    return {rec["measurements"]["seq"] for rec in expect(r, 200)["data"]}


def wait_for(check, seconds, what):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.1)


def test_redis_outage_under_load(services, server_on):
    srv = server_on()
    user = make_user(srv, "bearer")
    devices = [register_device(user) for _ in range(3)]
    keys = [d["api_key"] for d in devices]
    stream = Stream(user.api, devices[0]["id"])
    assert stream.ok
    with Load(srv, keys) as load:
        time.sleep(1.0)
        before = load.acked_count()
        services.stop("redis")
        time.sleep(2.0)
        # Ingest and device-key reads go on from the stores.
        during = load.acked_count()
        assert during > before, f"no message acknowledged while Redis was down ({before} → {during})"
        expect(key_client(srv, keys[1]).get(f"/telemetry/{devices[1]['id']}"), 200)
        expect(srv.admin.get(f"/devices/{devices[1]['id']}/status"), 200)
        # A session cannot be checked without Redis: a clean 503, never a 500.
        r = user.api.get(f"/users/{user.user_id}", allow_5xx=True)
        if r.status_code != 200:
            expect_error(r, 503)
            assert r.headers.get("Retry-After"), describe(r)
        services.start("redis")
        # Recovery without restarting iotflowd: sessions work again (Redis
        # keeps them in its append-only file) ...
        wait_for(lambda: user.api.get(f"/users/{user.user_id}", allow_5xx=True).status_code == 200, 15,
                 "session accepted again after Redis returned")
        time.sleep(1.0)
    assert not load.problems, "\n\n".join(load.problems[:5])
    assert srv.alive()
    # ... the stream opened before the outage receives new messages ...
    dev = key_client(srv, keys[0])
    def stream_gets_new_message():
        expect(dev.post("/telemetry", json={"data": {"seq": -1}}), 201)
        try:
            block = stream.next_block(1.0)
        except AssertionError:
            return False
        while block.get("event") == "telemetry":
            if '"seq":-1' in block["data"]:
                return True
            try:
                block = stream.next_block(0.5)
            except AssertionError:
                return False
        return False
    wait_for(stream_gets_new_message, 15, "stream resubscribed after Redis returned")
    stream.close()
    # ... and every acknowledged message was stored.
    for d, key in zip(devices, keys):
        missing = set(load.acked[key]) - stored_seqs(srv, d["id"])
        assert not missing, f"device {d['id']}: {len(missing)} acknowledged messages lost"


def test_postgres_outage_under_load(services, server_on):
    srv = server_on()
    user = make_user(srv, "bearer")
    devices = [register_device(user) for _ in range(3)]
    keys = [d["api_key"] for d in devices]
    with Load(srv, keys) as load:
        time.sleep(1.0)
        services.stop("postgres")
        time.sleep(2.5)
        # The registry is down: registry calls answer 503 + Retry-After.
        r = user.api.post("/devices/register", json={"name": "during-outage", "device_type": "t"}, allow_5xx=True)
        expect_error(r, 503)
        assert r.headers.get("Retry-After"), describe(r)
        expect_error(srv.admin.get("/users", allow_5xx=True), 503)
        services.start("postgres")
        wait_for(lambda: user.api.post("/devices/register", json={"name": "after-outage", "device_type": "t"},
                                       allow_5xx=True).status_code == 201, 20, "device registration works again")
        acked_after = load.acked_count()
        wait_for(lambda: load.acked_count() > acked_after + 20, 10, "ingest resumed")
    assert not load.problems, "\n\n".join(load.problems[:5])
    assert srv.alive()
    expect(srv.admin.get("/users"), 200)
    for d, key in zip(devices, keys):
        missing = set(load.acked[key]) - stored_seqs(srv, d["id"])
        assert not missing, f"device {d['id']}: {len(missing)} acknowledged messages lost"
