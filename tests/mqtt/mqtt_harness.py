"""Black-box test harness of iotflowd's MQTT listener (issue 14); conftest.py
registers its fixtures, the tests import the rest from here.

iotflowd starts as in tests/api (that suite's conftest is loaded here under
another name, so its Server, users, devices and response checks are shared,
not copied), with IOTFLOW_MQTT_PORT on a free port as well. Real clients
drive it: paho-mqtt (CallbackAPIVersion.VERSION2, MQTT 3.1.1 or 5.0) behind
a small synchronous facade (`Mqtt`: every wait is an event with a deadline),
and Debian's mosquitto_pub / mosquitto_sub as subprocesses. What goes in
over MQTT is read back over HTTP.
"""
import importlib.util
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

HERE = Path(__file__).resolve().parent


def _load_api_harness():
    """tests/api/conftest.py as the module `iotflow_api_harness`: its plain
    helpers only (its fixtures and hooks are not registered here)."""
    path = HERE.parent / "api" / "conftest.py"
    spec = importlib.util.spec_from_file_location("iotflow_api_harness", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


api = _load_api_harness()
describe, expect, expect_error = api.describe, api.expect, api.expect_error
make_user, register_device, create_group = api.make_user, api.register_device, api.create_group
key_client, unique, free_port = api.key_client, api.unique, api.free_port

V311, V5 = paho.MQTTv311, paho.MQTTv5
VERSION_NAMES = {V311: "3.1.1", V5: "5.0"}
TELEMETRY, BATCH = "devices/me/telemetry", "devices/me/telemetry/batch"
CONFIG, ALERTS = "devices/me/config", "devices/me/alerts"
WAIT = 10.0   # seconds any single expected event may take

# Reason codes the tests look for (MQTT 5.0 §2.4; 3.1.1 CONNACK codes apart).
RC_SUCCESS, RC_GRANTED_QOS_1, RC_DISCONNECT_WITH_WILL = 0x00, 0x01, 0x04
RC_UNSPECIFIED, RC_BAD_CREDENTIALS, RC_NOT_AUTHORIZED = 0x80, 0x86, 0x87
RC_CLIENT_ID_NOT_VALID, RC_KEEP_ALIVE_TIMEOUT, RC_TOPIC_NAME_INVALID = 0x85, 0x8D, 0x90
RC_PACKET_TOO_LARGE, RC_ADMINISTRATIVE, RC_PAYLOAD_INVALID = 0x95, 0x98, 0x99
V311_BAD_CREDENTIALS, V311_NOT_AUTHORIZED, V311_ID_REJECTED = 4, 5, 2


def pytest_configure(config):
    if getattr(config.option, "tbstyle", "auto") == "auto":
        config.option.tbstyle = "short"


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

class MqttServer(api.Server):
    """An iotflowd with its MQTT listener on a free port (`mqtt_port`)."""

    def start(self):
        self.mqtt_port = free_port()
        self.env["IOTFLOW_MQTT_PORT"] = str(self.mqtt_port)
        super().start()
        self._wait_mqtt_listening()
        return self

    def _wait_mqtt_listening(self):
        deadline = time.monotonic() + api.START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.mqtt_port), timeout=1).close()
                return
            except OSError as e:
                if time.monotonic() > deadline or not self.alive():
                    if self.alive():
                        self.proc.kill()
                        self.proc.wait()
                    pytest.fail(f"iotflowd does not listen for MQTT on {self.mqtt_port} "
                                f"(IOTFLOW_MQTT_PORT): {e}; stderr:\n{self.stderr()[-3000:]}")
                time.sleep(0.05)


# The shared server: no device rate limit (the tests publish quickly).
BASE_ENV = {"IOTFLOW_DEVICE_RATE_LIMIT": "0"}
_SHARED = []


@pytest.fixture(scope="session")
def server():
    srv = MqttServer(env=BASE_ENV).start()
    _SHARED.append(srv)
    yield srv
    srv.stop_and_check()
    srv.cleanup()


@pytest.fixture(autouse=True)
def _shared_server_survives():
    """A shared server that died fails the test that killed it, and is
    replaced by a fresh one so that one crash does not fail the rest."""
    yield
    api.assert_shared_alive(_SHARED)


@pytest.fixture
def start_server():
    """Starts a private server (keyword arguments as api.Server's); each is
    stopped, and checked for a clean exit, at teardown."""
    started = []

    def _start(**kw):
        kw["env"] = {**BASE_ENV, **kw.get("env", {})}
        s = MqttServer(**kw).start()
        started.append(s)
        return s

    yield _start
    for s in started:
        if s.alive():
            s.stop_and_check()
        s.cleanup()


@pytest.fixture(params=[V311, V5], ids=["v311", "v5"])
def version(request):
    return request.param


# --------------------------------------------------------------------------
# Users and devices
# --------------------------------------------------------------------------

class Device:
    """A registered device and its owner, with the HTTP reads the tests
    compare MQTT against."""

    def __init__(self, owner, info):
        self.owner, self.info, self.server = owner, info, owner.server
        self.id, self.key = info["id"], info["api_key"]

    def stored(self):
        """Every stored message's measurements, newest first (all pages)."""
        found, cursor = [], None
        while True:
            params = {"start_time": "-1d", "end_time": "now", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            body = expect(self.owner.api.get(f"/telemetry/{self.id}", params=params), 200)
            found.extend(rec["measurements"] for rec in body["data"])
            cursor = body["next_cursor"]
            if not cursor:
                return found

    def wait_stored(self, n, timeout=WAIT):
        """Polls until at least n messages are stored; returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.stored()
            if len(got) >= n:
                return got
            assert time.monotonic() < deadline, \
                f"device {self.id}: {len(got)} messages stored after {timeout} s, expected {n}: {got}"
            time.sleep(0.05)

    def put_config(self, config):
        return expect(self.owner.api.put(f"/devices/{self.id}/config", json=config), 200)

    def own_config(self):
        """What the device itself reads: GET /devices/config with its key."""
        return expect(key_client(self.server, self.key).get("/devices/config"), 200)

    def status(self):
        return expect(self.owner.api.get(f"/devices/{self.id}/status"), 200)


def new_device(user):
    return Device(user, register_device(user))


@pytest.fixture
def user(server):
    return make_user(server, "bearer")


@pytest.fixture
def device(user):
    return new_device(user)


# --------------------------------------------------------------------------
# paho-mqtt, synchronously
# --------------------------------------------------------------------------

class _PahoClient(paho.Client):
    """paho's Client, keeping the reason code of a DISCONNECT from the
    server: paho 2.1 reports one whose remaining length is under 3 (a reason
    code alone, or with an empty property list) as 0x00."""

    server_disconnect_reason = None

    def _handle_disconnect(self):
        body = self._in_packet["packet"]
        self.server_disconnect_reason = body[0] if body else RC_SUCCESS
        return super()._handle_disconnect()


class Mqtt:
    """One paho client (CallbackAPIVersion.VERSION2) on its own network
    thread (loop_start, never reconnecting by itself), with blocking calls
    that wait for the server's answer under a deadline."""

    def __init__(self, server, version, *, key=None, username="device", client_id="",
                 clean=True, session_expiry=None, keepalive=30, will=None,
                 inflight=20):
        self.server, self.version = server, version
        self.clean, self.session_expiry, self.keepalive = clean, session_expiry, keepalive
        self.c = _PahoClient(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=version, reconnect_on_failure=False,
                             clean_session=None if version == V5 else clean)
        if username is not None:
            self.c.username_pw_set(username, key)
        if will is not None:
            topic, payload = will
            self.c.will_set(topic, _payload(payload), qos=1)
        self.c.max_inflight_messages_set(inflight)
        self.lock = threading.Condition()
        self.connack = None            # (reason code, session present, properties)
        self.closed = None             # (reason code, from server, properties)
        self.acks = {}                 # mid -> (reason code, properties)
        self.subacks = {}              # mid -> [reason codes]
        self.messages = queue.Queue()  # paho MQTTMessage
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)

    # -- callbacks (network thread) -----------------------------------------
    def _on_connect(self, client, userdata, flags, reason, props):
        with self.lock:
            self.connack = (reason.value, flags.session_present, props)
            self.lock.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason, props):
        from_server = flags.is_disconnect_packet_from_server
        rc = self.c.server_disconnect_reason if from_server else reason.value
        with self.lock:
            self.closed = (rc, from_server, props)
            self.lock.notify_all()

    def _on_publish(self, client, userdata, mid, reason, props):
        with self.lock:
            self.acks[mid] = (reason.value, props)
            self.lock.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, props):
        with self.lock:
            self.subacks[mid] = [r.value for r in reasons]
            self.lock.notify_all()

    # -- waiting -----------------------------------------------------------
    def _wait(self, ready, timeout, what):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = ready()
                if got is not None:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"MQTT {VERSION_NAMES[self.version]}: {what} "
                                         f"not within {timeout} s{self._server_note()}")
                self.lock.wait(left)

    def _server_note(self):
        if self.server.alive():
            return ""
        return (f"; the server died (exit {self.server.proc.returncode}), stderr tail:\n"
                f"{self.server.stderr()[-3000:]}")

    # -- session -------------------------------------------------------------
    def connect(self, timeout=WAIT):
        """Connects; returns the CONNACK's reason code (paho maps 3.1.1
        return codes onto v5 ones: 4 -> 0x86, 5 -> 0x87, 2 -> 0x85)."""
        kw = {}
        if self.version == V5:
            props = Properties(PacketTypes.CONNECT)
            if self.session_expiry is not None:
                props.SessionExpiryInterval = self.session_expiry
            kw = {"clean_start": self.clean, "properties": props}
        self.c.connect("127.0.0.1", self.server.mqtt_port, self.keepalive, **kw)
        self.c.loop_start()
        self._wait(lambda: (self.connack[0] if self.connack else
                            ("closed" if self.closed else None)), timeout, "CONNACK")
        if self.connack is None:
            raise AssertionError(f"connection closed before any CONNACK: {self.closed}"
                                 f"{self._server_note()}")
        return self.connack[0]

    def connect_ok(self, timeout=WAIT):
        rc = self.connect(timeout)
        assert rc == RC_SUCCESS, f"CONNACK refused: {ReasonCode(PacketTypes.CONNACK, identifier=rc)}"
        return self

    @property
    def session_present(self):
        return self.connack[1]

    @property
    def connack_props(self):
        return self.connack[2]

    def disconnect(self, reason=None, timeout=WAIT):
        """A normal DISCONNECT (or one with a v5 reason code); returns once
        the server has closed its end, so has handled it (kept or ended the
        session, dropped or stored the will): paho closes its socket right
        after writing DISCONNECT, so a duplicate of the socket watches for
        the server's close."""
        if self.closed is None:
            watch = socket.socket(fileno=os.dup(self.c.socket().fileno()))
            try:
                if reason is None:
                    self.c.disconnect()
                else:
                    self.c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=reason))
                self.wait_closed(timeout)
                _until_eof(watch, timeout, f"the server's close after DISCONNECT{self._server_note()}")
            finally:
                watch.close()
        self.c.loop_stop()

    def drop(self):
        """Ends the connection without DISCONNECT (as a device losing power
        would, seen from the server: the TCP connection just ends)."""
        self.c.socket().shutdown(socket.SHUT_RDWR)
        self.wait_closed()
        self.c.loop_stop()

    def wait_closed(self, timeout=WAIT):
        """(reason code, whether a DISCONNECT came from the server, its properties)."""
        return self._wait(lambda: self.closed, timeout, "the connection's end")

    def close(self):
        """Teardown: whatever state, leave nothing running."""
        try:
            if self.closed is None and self.connack is not None:
                self.c.disconnect()
                self._wait(lambda: self.closed, 5, "teardown DISCONNECT")
        except AssertionError:
            pass
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()

    # -- traffic -------------------------------------------------------------
    def publish_nowait(self, topic, payload, qos=1, retain=False):
        """Sends a PUBLISH, returns its packet id. paho writes it at once
        from this thread and says MQTT_ERR_NO_CONN when the server has
        already ended the connection (it may, after this very packet): the
        caller then sees the end (wait_closed, or no PUBACK)."""
        info = self.c.publish(topic, _payload(payload), qos=qos, retain=retain)
        assert info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN), \
            f"paho refused to publish: {info.rc}"
        return info.mid

    def wait_ack(self, mid, timeout=WAIT):
        """The PUBACK's (reason code, properties); None when the
        connection ended without it."""
        got = self._wait(lambda: self.acks.pop(mid, None) or
                         (("closed",) if self.closed else None), timeout, f"PUBACK of {mid}")
        return None if got == ("closed",) else got

    def publish(self, topic, payload, qos=1, timeout=WAIT):
        """QoS 1: waits for the PUBACK and returns its reason code (None if
        the connection ended first). QoS 0: returns once written."""
        mid = self.publish_nowait(topic, payload, qos)
        if qos == 0:
            return None
        got = self.wait_ack(mid, timeout)
        return None if got is None else got[0]

    def publish_ok(self, topic, payload, qos=1):
        rc = self.publish(topic, payload, qos)
        assert qos == 0 or rc == RC_SUCCESS, \
            f"{topic} {payload!r}: PUBACK {rc if rc is None else hex(rc)}, expected success"

    def subscribe(self, *filters, qos=1, options=None, timeout=WAIT):
        """One SUBSCRIBE; returns the SUBACK's reason codes, one per filter.
        `options`: v5 SubscribeOptions (then used instead of `qos`)."""
        rc, mid = self.c.subscribe([(f, options or qos) for f in filters])
        assert rc == paho.MQTT_ERR_SUCCESS, f"paho refused to subscribe: {rc}"
        return self._wait(lambda: self.subacks.pop(mid, None), timeout, f"SUBACK of {filters}")

    def next_message(self, timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s{self._server_note()}") from None

    def round_trip(self):
        """Returns once the server has handled everything this client sent
        before: a QoS 1 PUBLISH's PUBACK follows them in order."""
        self.publish_ok(TELEMETRY, {"data": {"round_trip": 1}})


def _until_eof(sock, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{what}: not within {timeout} s")
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return
        except socket.timeout:
            continue
        except ConnectionResetError:
            return


def _payload(p):
    if isinstance(p, (dict, list)):
        return json.dumps(p).encode()
    return p.encode() if isinstance(p, str) else p


@pytest.fixture
def mqtt():
    """mqtt(server, version, key=..., ...) -> Mqtt (not yet connected);
    every client is closed at teardown."""
    made = []

    def _make(server, version, **kw):
        m = Mqtt(server, version, **kw)
        made.append(m)
        return m

    yield _make
    for m in made:
        m.close()


@pytest.fixture
def connect(mqtt):
    """connect(device, version, **kw) -> a connected Mqtt on the shared server."""

    def _connect(device, version, **kw):
        return mqtt(device.server, version, key=device.key, **kw).connect_ok()

    return _connect


# --------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub
# --------------------------------------------------------------------------

MOSQUITTO_VERSION = {V311: "mqttv311", V5: "mqttv5"}


def mosquitto_pub(server, version, key, topic, message, qos=1, username="anything"):
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.mqtt_port),
            "-V", MOSQUITTO_VERSION[version], "-q", str(qos), "-t", topic, "-m", message]
    if username is not None:
        args += ["-u", username, "-P", key]
    return subprocess.run(args, capture_output=True, text=True, timeout=WAIT + 5)


class MosquittoSub:
    """mosquitto_sub in debug mode (-d), so that the test knows when its
    SUBACK came; its stdout is read line by line on a thread."""

    def __init__(self, server, version, key, topic, count, *, ignore_retained=False):
        # stdbuf: line-buffered stdout, or the debug lines wait in a pipe buffer
        args = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", str(server.mqtt_port),
                "-V", MOSQUITTO_VERSION[version], "-u", "anything", "-P", key,
                "-t", topic, "-q", "1", "-C", str(count), "-W", str(int(WAIT) + 5)]
        if ignore_retained:
            args.append("-R")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = queue.Queue()
        self.all = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, predicate, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                line = "<timeout>"
            if line is None or line == "<timeout>":
                raise AssertionError(f"mosquitto_sub: {what} not seen ({line or 'exited'}); "
                                     f"output: {self.all}; stderr: {self._stderr()}")
            self.all.append(line)
            if predicate(line):
                return line

    def wait_suback(self):
        self.wait_line(lambda s: "received SUBACK" in s, "SUBACK")

    def next_json(self):
        """The next message's payload (debug lines are not JSON objects)."""
        return json.loads(self.wait_line(lambda s: s.startswith("{"), "a message"))

    def finish(self):
        try:
            rc = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"mosquitto_sub did not exit; output {self.all}")
        return rc

    def _stderr(self):
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def mosquitto_sub():
    made = []

    def _start(*a, **kw):
        s = MosquittoSub(*a, **kw)
        made.append(s)
        return s

    yield _start
    for s in made:
        s.kill()


# --------------------------------------------------------------------------
# Several instances (the cache's pub/sub): PostgreSQL + Redis
# --------------------------------------------------------------------------

# Set by `make test-mqtt` when the servers of scripts/services.sh run; the
# two-instance tests skip otherwise (the embedded cache is one process's).
MQTT_DATABASE_URL = os.environ.get("IOTFLOW_TEST_MQTT_DATABASE_URL", "")
MQTT_REDIS_URL = os.environ.get("IOTFLOW_TEST_MQTT_REDIS_URL", "")
# Documents (device configurations) on a MongoDB-protocol server (FerretDB
# in make test): without it each instance keeps its own, and a config PUT
# on one is not there for the other to deliver.
MQTT_MONGODB_URL = os.environ.get("IOTFLOW_TEST_MQTT_MONGODB_URL", "")


def shared_namespace():
    """The environment of a fresh namespace on PostgreSQL and Redis (a
    schema and a key prefix of its own), and on the MongoDB-protocol server
    when there is one (a database of its own), for instances that share
    state."""
    name = "mqtt_" + os.urandom(8).hex()
    api.psql(MQTT_DATABASE_URL, f"CREATE SCHEMA {name}")
    env = {"DATABASE_URL": api._with_param(MQTT_DATABASE_URL, f"options=-csearch_path%3D{name}"),
           "REDIS_URL": api._with_param(MQTT_REDIS_URL, f"prefix={name}:")}
    if MQTT_MONGODB_URL:
        api.TEST_MONGODB_URL = MQTT_MONGODB_URL   # what _mongodb_url_for rewrites
        env["MONGODB_URL"] = api._mongodb_url_for(name)
    return env
