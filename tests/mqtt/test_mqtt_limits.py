"""The listener's own limits, each with the client that would abuse it:
strangers holding sockets open without CONNECT, a subscriber that never
reads, a client whose Maximum Packet Size is too small for a Reason String,
wills past the device's rate limit; and its metrics."""
import select
import socket
import struct
import time

from mqtt_harness import (TELEMETRY, WAIT, make_user, new_device, RC_SUCCESS,
                          RC_PAYLOAD_INVALID)
from raw_mqtt import Closed, RawClient, packet, publish_packet, subscribe_packet, utf8, varint

CONNECT, PUBACK, SUBACK = 1, 4, 9


def test_connections_awaiting_connect_are_capped_per_address(start_server):
    server = start_server(env={"IOTFLOW_MQTT_PENDING_PER_IP": "3"})
    _wait_no_connections(server)   # the harness's probe of the port counted too
    # Four silent sockets from one address: whichever the event loops
    # accept last (they share the port) is closed at once.
    silent = [socket.create_connection(("127.0.0.1", server.mqtt_port)) for _ in range(4)]
    try:
        deadline = time.monotonic() + WAIT
        closed = []
        while not closed and time.monotonic() < deadline:
            readable, _, _ = select.select(silent, [], [], 0.1)
            closed = [s for s in readable if s.recv(16) == b""]
        assert len(closed) == 1, f"{len(closed)} of 4 silent connections closed, expected 1"
        # Three are held: a fourth is refused until one of them goes.
        device = new_device(make_user(server, "bearer"))
        assert _connect_rc(server, device) is None, "a fourth connection got to CONNECT"
        next(s for s in silent if s not in closed).close()
        deadline = time.monotonic() + WAIT
        while (rc := _connect_rc(server, device)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rc == 0, "no place freed when a silent connection went"
    finally:
        for s in silent:
            s.close()


def _wait_no_connections(server):
    deadline = time.monotonic() + WAIT
    while _metrics(server)["iotflow_mqtt_connections"] != 0:
        assert time.monotonic() < deadline, "the server still counts a connection"
        time.sleep(0.02)


def _connect_rc(server, device):
    """The CONNACK code, or None when the server closed the socket first."""
    raw = RawClient(server.mqtt_port, 4)
    try:
        return raw.connect(client_id="d", username="u", password=device.key)[1]
    except Closed:
        return None
    finally:
        raw.close()


def test_a_subscriber_that_never_reads_is_disconnected(start_server):
    """Output owed to a client is capped (about 2 x the maximum packet):
    configurations pushed to one that reads nothing end its connection
    instead of growing the server's memory. Watched through /metrics: the
    client itself must not read."""
    server = start_server(env={"IOTFLOW_MQTT_MAX_PACKET": "4096"})
    device = new_device(make_user(server, "bearer"))
    raw = RawClient(server.mqtt_port, 4)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        assert raw.connect(client_id="deaf", username="u", password=device.key)[1] == 0
        raw.send(subscribe_packet(4, "devices/me/config", qos=0))
        assert raw.read()[0] == SUBACK
        blob = "x" * 60000
        for i in range(400):                  # up to 24 MB owed; the cap is about 73 kB
            device.put_config({"blob": blob, "n": i})
            if i % 10 == 9 and _metrics(server)["iotflow_mqtt_connections"] == 0:
                break
        assert _metrics(server)["iotflow_mqtt_connections"] == 0, \
            "a client that reads nothing is still connected after 400 configurations"
    finally:
        raw.close()


def _v5_connect_with_max_packet(key, max_packet):
    props = bytes([0x27]) + struct.pack("!I", max_packet)   # Maximum Packet Size
    body = (utf8("MQTT") + bytes([5, 0x02 | 0x40 | 0x80]) + struct.pack("!H", 30)
            + varint(len(props)) + props + utf8("small") + utf8("u") + utf8(key))
    return packet(CONNECT, 0, body)


def test_a_small_client_maximum_packet_size_drops_the_reason_string_not_the_answer(device):
    """v5 §3.4.2.2.2: a PUBACK whose Reason String would exceed the
    client's maximum goes without it — never not at all."""
    raw = RawClient(device.server.mqtt_port, 5)
    try:
        raw.send(_v5_connect_with_max_packet(device.key, 16))
        ptype, _, body = raw.read()
        assert ptype == 2 and body[1] == RC_SUCCESS, f"CONNACK {body!r}"
        raw.send(publish_packet(5, TELEMETRY, b"not json", mid=7))
        ptype, _, body = raw.read()
        assert ptype == PUBACK, f"expected the PUBACK, got type {ptype}"
        assert len(body) <= 14, f"the PUBACK exceeds the client's 16 bytes: {body!r}"
        assert struct.unpack("!H", body[:2])[0] == 7 and body[2] == RC_PAYLOAD_INVALID, body
    finally:
        raw.close()


def test_wills_count_against_the_device_rate_limit(start_server):
    server = start_server(env={"IOTFLOW_DEVICE_RATE_LIMIT": "3"})
    device = new_device(make_user(server, "bearer"))
    for n in range(6):
        raw = RawClient(server.mqtt_port, 4)
        assert raw.connect(client_id=f"w{n}", username="u", password=device.key,
                           will=(TELEMETRY, '{"data": {"will": %d}}' % n))[1] == 0
        raw.sock.shutdown(socket.SHUT_RDWR)    # gone without DISCONNECT: the will is due
        raw.close()
    # All six wills were due (each is queued as its connection closes);
    # three fit the limit of three per minute.
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        m = _metrics(server)
        if (m["iotflow_mqtt_connections"] == 0 and m["iotflow_ingest_queue_messages"] == 0
                and m["iotflow_mqtt_messages_stored_total"] >= 3):
            break
        time.sleep(0.05)
    assert len(device.stored()) == 3, device.stored()


def _metrics(server):
    reply = server.root.get("/metrics", headers=server.admin_headers)
    assert reply.status_code == 200, reply.text
    values = {}
    for line in reply.text.splitlines():
        if line.startswith(("iotflow_mqtt_", "iotflow_ingest_queue_messages")):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_count_connections_and_messages(start_server):
    server = start_server()
    device = new_device(make_user(server, "bearer"))
    _wait_no_connections(server)
    before = _metrics(server)
    raw = RawClient(server.mqtt_port, 5)
    try:
        assert raw.connect(client_id="m", username="u", password=device.key)[1] == RC_SUCCESS
        raw.send(publish_packet(5, TELEMETRY, b'{"data": {"t": 1}}', mid=1))
        raw.send(publish_packet(5, TELEMETRY, b"nope", mid=2))
        assert [raw.read()[0] for _ in range(2)] == [PUBACK, PUBACK]
        now = _metrics(server)
        assert now["iotflow_mqtt_connections"] == 1, now
        assert now["iotflow_mqtt_messages_stored_total"] == before["iotflow_mqtt_messages_stored_total"] + 1
        assert now["iotflow_mqtt_messages_refused_total"] == before["iotflow_mqtt_messages_refused_total"] + 1
        assert now["iotflow_mqtt_connections_accepted_total"] >= 1
    finally:
        raw.close()
    bad = RawClient(server.mqtt_port, 5)
    try:
        assert bad.connect(client_id="x", username="u", password="wrong")[1] == 0x86
    finally:
        bad.close()
    assert _metrics(server)["iotflow_mqtt_connects_refused_total"] == \
        before["iotflow_mqtt_connects_refused_total"] + 1
