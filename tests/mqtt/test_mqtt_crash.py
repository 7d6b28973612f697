"""Durability of PUBACKed telemetry across a crash (as tests/api/test_crash.py
for HTTP): paho clients, 3.1.1 and 5.0, publish QoS 1 messages (single and
batches), each carrying a unique (client, seq), as fast as their in-flight
windows allow, and record every message whose PUBACK said success. iotflowd
gets SIGKILL mid-run, a new one starts on the SAME data directory, and
everything is read back over HTTP: every acknowledged message is there
exactly once, the others at most once, and nothing that was never sent.
Two kill cycles run in a row."""
import collections
import json
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_harness import (BASE_ENV, BATCH, TELEMETRY, V5, V311, Mqtt, MqttServer, api, expect,
                          make_user, new_device)

DEVICES = 3
CLIENTS = 6          # half 3.1.1, half 5.0, spread over the devices
WINDOW = 32          # QoS 1 messages in flight per client (below Receive Maximum)
MIN_ACKED = 150      # per client before the kill...
MIN_SECONDS = 1.0    # ...and at least this long under load
LOAD_DEADLINE = 20.0
CYCLES = 2           # kill, restart, load and kill again


class Publisher:
    """One paho client publishing numbered messages on its own thread; the
    network thread (loop_start) settles them as PUBACKs arrive."""

    def __init__(self, server, key, version, index):
        self.index, self.version = index, version
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"load-{index}",
                             protocol=version, reconnect_on_failure=False,
                             clean_session=None if version == V5 else True)
        self.c.username_pw_set("load", key)
        self.c.max_inflight_messages_set(WINDOW)
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = lambda *a: self.lost.set()
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.window = threading.Semaphore(WINDOW)
        self.lock = threading.Lock()
        self.pending = {}      # mid -> ids, published and not yet settled
        self.early = {}        # mid -> reason code, PUBACKed before publish() returned
        self.sent, self.acked = set(), set()
        self.refused = []      # (ids, reason code) refused before the kill
        self.stop, self.lost, self.connected = threading.Event(), threading.Event(), threading.Event()
        self.server = server
        self.c.connect("127.0.0.1", server.mqtt_port, 30)
        self.c.loop_start()
        assert self.connected.wait(10), f"client {index}: no CONNACK"
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _settle(self, ids, rc):
        if rc < 0x80:
            self.acked.update(ids)
        elif self.server.alive():
            self.refused.append((ids, rc))

    def _on_publish(self, client, userdata, mid, reason, props):
        # Called under paho's own lock: take ours only briefly, never the
        # other way round (publish() takes paho's lock too).
        with self.lock:
            ids = self.pending.pop(mid, None)
            if ids is None:
                self.early[mid] = reason.value
            else:
                self._settle(ids, reason.value)
        self.window.release()

    def _run(self):
        seq, n = 0, 0
        while not self.stop.is_set() and not self.lost.is_set():
            if not self.window.acquire(timeout=0.1):
                continue
            n += 1
            if n % 8 == 0:
                count = 2 + (n // 8) % 19
                ids = [(self.index, seq + k) for k in range(count)]
                topic, payload = BATCH, [{"data": {"client": self.index, "seq": s}} for _, s in ids]
            else:
                ids = [(self.index, seq)]
                topic, payload = TELEMETRY, {"data": {"client": self.index, "seq": seq}}
            seq += len(ids)
            with self.lock:
                self.sent.update(ids)
            info = self.c.publish(topic, _json(payload), qos=1)
            with self.lock:
                rc = self.early.pop(info.mid, None)
                if rc is None:
                    self.pending[info.mid] = ids
                else:
                    self._settle(ids, rc)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                return   # the connection is gone (after the kill)

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), f"client {self.index}: publisher thread hung"
        self.c.loop_stop()


def _json(payload):
    return json.dumps(payload).encode()


def read_back(server, devices):
    """(client, seq) of every stored message of the devices."""
    found = []
    for d in devices:
        cursor = None
        while True:
            params = {"start_time": "-1d", "end_time": "now", "limit": 10000}
            if cursor:
                params["cursor"] = cursor
            body = expect(server.admin.get(f"/telemetry/{d.id}", params=params), 200)
            found.extend((r["measurements"]["client"], r["measurements"]["seq"])
                         for r in body["data"] if "client" in r["measurements"])
            cursor = body["next_cursor"]
            if not cursor:
                break
    return found


def load_then_kill(server, devices, cycle):
    """CLIENTS publishers under load until each has enough PUBACKs, then
    SIGKILL with PUBLISHes in flight; returns the publishers."""
    publishers = [Publisher(server, devices[i % DEVICES].key, V311 if i % 2 else V5,
                            cycle * 100 + i) for i in range(CLIENTS)]
    try:
        start = time.monotonic()
        for p in publishers:
            p.thread.start()
        while (time.monotonic() - start < MIN_SECONDS
               or min(p.acked_count() for p in publishers) < MIN_ACKED):
            assert server.alive(), f"server died under load; stderr:\n{server.stderr()[-3000:]}"
            assert time.monotonic() - start < LOAD_DEADLINE, \
                f"too slow: acked per client {[p.acked_count() for p in publishers]} after {LOAD_DEADLINE} s"
            time.sleep(0.05)
        server.proc.kill()
        server.proc.wait(timeout=30)
        for p in publishers:
            assert p.lost.wait(10), f"client {p.index} did not notice the kill"
            p.finish()
    finally:
        for p in publishers:
            p.stop.set()
            p.c.loop_stop()
    refused = [r for p in publishers for r in p.refused]
    assert not refused, f"PUBACKs with a failure under load before the kill: {refused[:10]}"
    return publishers


def check(server, devices, publishers):
    found = read_back(server, devices)
    counts = collections.Counter(found)
    acked = set().union(*(p.acked for p in publishers))
    sent = set().union(*(p.sent for p in publishers))
    missing = sorted(acked - set(counts))
    dups = sorted(k for k, n in counts.items() if n > 1)
    phantom = sorted(set(counts) - sent)
    summary = (f"acked {len(acked)}, sent {len(sent)}, stored {len(found)} "
               f"({len(counts)} distinct), not acknowledged {len(sent) - len(acked)}")
    assert not missing, f"{len(missing)} PUBACKed messages lost (first {missing[:20]}); {summary}"
    assert not dups, f"{len(dups)} messages stored twice (first {dups[:20]}); {summary}"
    assert not phantom, f"{len(phantom)} stored messages never sent: {phantom[:20]}"
    st = expect(server.admin.get("/telemetry/status"), 200)
    assert st["total_messages"] == len(found), \
        f"status total_messages {st['total_messages']} != {len(found)}"
    return summary


class _Marker:
    """The one message published after each restart, acknowledged on its own."""

    def __init__(self, cycle):
        self.acked = self.sent = {(-1, cycle)}


def test_acknowledged_mqtt_telemetry_survives_sigkill():
    root = Path(tempfile.mkdtemp(prefix="iotflowd-mqtt-crash-"))
    data_dir, token = root / "data", secrets.token_hex(16)
    backends = api.fresh_backends()   # every incarnation on the same registry and cache
    incarnations = []

    def launch():
        s = MqttServer(data_dir=data_dir, admin_token=token, env=BASE_ENV, backends=backends)
        incarnations.append(s)
        return s.start()

    try:
        server = launch()
        user = make_user(server, "bearer")
        devices = [new_device(user) for _ in range(DEVICES)]
        everything = []
        for cycle in range(CYCLES):
            everything += load_then_kill(server, devices, cycle)
            server = launch()                  # the same data directory
            print(f"cycle {cycle}: " + check(server, devices, everything))
            # the restarted server takes MQTT again with the same keys
            again = Mqtt(server, V5, key=devices[0].key)
            try:
                again.connect_ok().publish_ok(TELEMETRY, {"data": {"client": -1, "seq": cycle}})
            finally:
                again.close()
            everything.append(_Marker(cycle))
        check(server, devices, everything)
        server.stop_and_check()
    finally:
        for s in incarnations:
            if s.alive():
                s.proc.kill()
                s.proc.wait()
            s.cleanup()
        api.drop_namespace(backends)
    shutil.rmtree(root, ignore_errors=True)
