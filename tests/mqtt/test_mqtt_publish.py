"""PUBLISH: telemetry over MQTT (one message, and batches), QoS 0 and 1,
read back over HTTP; what is refused (bad payloads, other topics, QoS 2,
retain, an inactive device, the rate limit, packets above the maximum) and
how each version says so; SUBSCRIBE filters that are not allowed."""
import json

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqtt_harness import (BATCH, CONFIG, RC_GRANTED_QOS_1, RC_NOT_AUTHORIZED, RC_PACKET_TOO_LARGE,
                          RC_PAYLOAD_INVALID, RC_SUCCESS, RC_TOPIC_NAME_INVALID, RC_UNSPECIFIED,
                          ALERTS, BASE_ENV, TELEMETRY, V5, V311, WAIT, MqttServer, expect, make_user,
                          new_device)
from raw_mqtt import PUBACK, RawClient, publish_packet

RC_QUOTA_EXCEEDED, RC_RETAIN_NOT_SUPPORTED, RC_QOS_NOT_SUPPORTED = 0x97, 0x9A, 0x9B
RC_WILDCARDS_NOT_SUPPORTED, RC_RECEIVE_MAXIMUM_EXCEEDED, RC_SERVER_UNAVAILABLE = 0xA2, 0x93, 0x88


def seqs(stored, key="seq"):
    return sorted(m[key] for m in stored if key in m)


@pytest.mark.parametrize("qos", [0, 1])
def test_single_messages_arrive_once(connect, device, version, qos):
    m = connect(device, version)
    for i in range(20):
        m.publish_ok(TELEMETRY, {"data": {"seq": i, "temp": 20 + i / 10}}, qos=qos)
    stored = device.stored() if qos == 1 else device.wait_stored(20)
    assert seqs(stored) == list(range(20)), stored
    assert all(s["temp"] == 20 + s["seq"] / 10 for s in stored), stored


@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize("wrapped", [False, True], ids=["array", "messages"])
def test_batches_arrive_once(connect, device, version, qos, wrapped):
    m = connect(device, version)
    for b in range(4):
        msgs = [{"data": {"seq": b * 10 + k}} for k in range(10)]
        m.publish_ok(BATCH, {"messages": msgs} if wrapped else msgs, qos=qos)
    stored = device.stored() if qos == 1 else device.wait_stored(40)
    assert seqs(stored) == list(range(40)), stored


def test_timestamp_and_metadata_kept(connect, device, version):
    m = connect(device, version)
    m.publish_ok(TELEMETRY, {"data": {"v": 1}, "timestamp": "2026-01-02T03:04:05.678Z",
                             "metadata": {"fw": "1.0"}})
    r = device.owner.api.get(f"/telemetry/{device.id}",
                             params={"start_time": "2026-01-01T00:00:00Z", "end_time": "now"})
    rec = expect(r, 200)["data"]
    assert len(rec) == 1 and rec[0]["timestamp"] == "2026-01-02T03:04:05.678Z", rec


def test_first_publish_activates_a_new_device(connect, device, version):
    assert device.status()["device"]["status"] == "inactive"
    connect(device, version).publish_ok(TELEMETRY, {"data": {"x": 1}})
    assert device.status()["device"]["status"] == "active"


# ------------------------------------------------------------ refusals

BAD_PAYLOADS = {
    "not JSON": b"hello",
    "truncated JSON": b'{"data": {"x": 1}',
    "no data": b'{"x": 1}',
    "data not an object": b'{"data": 5}',
    "empty": b"",
    "a JSON array": b"[1, 2]",
}
BAD_BATCHES = {
    "not JSON": b"[{",
    "an element without data": b'[{"data": {"x": 1}}, {"y": 2}]',
    "empty array": b"[]",
}


def test_v5_bad_payloads_get_0x99_and_the_connection_stays(connect, device):
    m = connect(device, V5)
    problems = []
    for topic, cases in ((TELEMETRY, BAD_PAYLOADS), (BATCH, BAD_BATCHES)):
        for label, payload in cases.items():
            mid = m.publish_nowait(topic, payload)
            got = m.wait_ack(mid)
            if got is None:
                problems.append(f"{topic} {label}: connection closed, no PUBACK")
                break
            rc, props = got
            reason = getattr(props, "ReasonString", "")
            if rc != RC_PAYLOAD_INVALID or not reason:
                problems.append(f"{topic} {label}: PUBACK {rc:#x} reason string {reason!r}, "
                                f"expected 0x99 with a reason string")
    assert not problems, "\n".join(problems)
    m.publish_ok(TELEMETRY, {"data": {"seq": 1}})
    assert device.stored() == [{"seq": 1}]


def test_v311_bad_payloads_are_acked_and_dropped(connect, device):
    m = connect(device, V311)
    for topic, cases in ((TELEMETRY, BAD_PAYLOADS), (BATCH, BAD_BATCHES)):
        for label, payload in cases.items():
            assert m.publish(topic, payload) == RC_SUCCESS, f"{topic} {label}: no PUBACK"
    m.publish_ok(TELEMETRY, {"data": {"seq": 1}})
    assert device.stored() == [{"seq": 1}]


@pytest.mark.parametrize("qos", [0, 1])
def test_other_topics_are_refused(connect, device, version, qos):
    m = connect(device, version)
    topics = ["devices/me/telemetry/x", "devices/me/config", "devices/other/telemetry",
              "telemetry", f"devices/{device.id}/telemetry", "devices/me/Telemetry"]
    for topic in topics:
        rc = m.publish(topic, {"data": {"seq": 0}}, qos=qos)
        if qos == 1:
            want = RC_TOPIC_NAME_INVALID if version == V5 else RC_SUCCESS
            assert rc == want, f"{topic}: PUBACK {rc if rc is None else hex(rc)}, expected {want:#x}"
    m.round_trip()
    assert seqs(device.stored()) == [], device.stored()


def test_v5_publish_for_an_inactive_device(connect, server, device):
    m = connect(device, V5)
    m.publish_ok(TELEMETRY, {"data": {"seq": 1}})
    expect(server.admin.put(f"/admin/devices/{device.id}/status", json={"status": "maintenance"}), 200)
    assert m.publish(TELEMETRY, {"data": {"seq": 2}}) == RC_NOT_AUTHORIZED
    assert seqs(device.stored()) == [1]


def test_qos_2_ends_the_connection(connect, device, version):
    m = connect(device, version)
    m.publish_nowait(TELEMETRY, {"data": {"seq": 1}}, qos=2)
    rc, from_server, _ = m.wait_closed()
    if version == V5:
        assert from_server and rc == RC_QOS_NOT_SUPPORTED, f"closed with {rc:#x} (from server: {from_server})"
    assert device.stored() == []


def test_retain_flag(connect, device, version):
    m = connect(device, version)
    mid = m.publish_nowait(TELEMETRY, {"data": {"seq": 1}}, retain=True)
    if version == V5:
        rc, from_server, _ = m.wait_closed()
        assert from_server and rc == RC_RETAIN_NOT_SUPPORTED, \
            f"closed with {rc:#x} (from server: {from_server}), expected DISCONNECT 0x9A"
        assert device.stored() == []
    else:   # 3.1.1 ignores it
        assert m.wait_ack(mid)[0] == RC_SUCCESS
        assert device.stored() == [{"seq": 1}]


def test_v5_topic_alias_ends_the_connection(connect, device):
    m = connect(device, V5)
    props = Properties(PacketTypes.PUBLISH)
    props.TopicAlias = 1
    m.c.publish(TELEMETRY, b'{"data": {"seq": 1}}', qos=1, properties=props)
    rc, from_server, _ = m.wait_closed()
    assert from_server and rc == RC_TOPIC_ALIAS_INVALID, \
        f"closed with {rc:#x} (DISCONNECT from the server: {from_server}), expected 0x94"
    assert device.stored() == []


def test_rate_limit(start_server, mqtt, version):
    srv = start_server(env={"IOTFLOW_DEVICE_RATE_LIMIT": "3"})
    device = new_device(make_user(srv, "bearer"))
    m = mqtt(srv, version, key=device.key).connect_ok()
    m.publish_ok(BATCH, [{"data": {"seq": 0}}, {"data": {"seq": 1}}])   # counts once
    m.publish_ok(TELEMETRY, {"data": {"seq": 2}})
    m.publish_ok(TELEMETRY, {"data": {"seq": 3}})
    rc = m.publish(TELEMETRY, {"data": {"seq": 4}})
    if version == V5:
        assert rc == RC_QUOTA_EXCEEDED, f"PUBACK {rc if rc is None else hex(rc)}, expected 0x97"
    else:   # closed without the PUBACK: the client sends it again later
        assert rc is None, f"PUBACK {rc:#x}: 3.1.1 closes without a PUBACK when rate limited"
    assert seqs(device.stored()) == [0, 1, 2, 3]


# ------------------------------------------------------------ SUBSCRIBE

FORBIDDEN_FILTERS = ["devices/me/#", "#", "devices/+/config", "devices/me/telemetry",
                     "devices/other/config", "devices/me/config/x", "$SYS/#", "devices/me/+",
                     "$share/group/devices/me/config"]
RC_SHARED_NOT_SUPPORTED, RC_TOPIC_ALIAS_INVALID = 0x9E, 0x94


def refusal(version, topic_filter):
    """3.1.1 has one SUBACK failure code, 0x80; v5 says 0x87 (not
    authorized), 0xA2 for a wildcard filter and 0x9E for a shared
    subscription (the CONNACK announced neither available)."""
    if version == V311:
        return RC_UNSPECIFIED
    if topic_filter.startswith("$share/"):
        return RC_SHARED_NOT_SUPPORTED
    wildcard = "#" in topic_filter or "+" in topic_filter
    return RC_WILDCARDS_NOT_SUPPORTED if wildcard else RC_NOT_AUTHORIZED


def test_forbidden_filters_are_refused(connect, device, version):
    m = connect(device, version)
    got = m.subscribe(*FORBIDDEN_FILTERS)
    want = [refusal(version, f) for f in FORBIDDEN_FILTERS]
    assert got == want, {f: (hex(g), hex(w)) for f, g, w in zip(FORBIDDEN_FILTERS, got, want) if g != w}
    # allowed ones beside forbidden ones, in one SUBSCRIBE; QoS at most 1
    got = m.subscribe(CONFIG, "#", ALERTS, qos=1)
    assert got == [RC_GRANTED_QOS_1, refusal(version, "#"), RC_GRANTED_QOS_1], got
    m.round_trip()


# ------------------------------------------------------------ size

MAX_PACKET = 4096


def padded(seq, size):
    """A valid message of about `size` bytes: string values are at most
    1024 bytes, so the padding is spread over several."""
    data, i = {"seq": seq}, 0
    while len(str(data)) < size:
        data[f"pad{i}"] = "x" * 1000
        i += 1
    return {"data": data}


@pytest.fixture(scope="module")
def small_server():
    srv = MqttServer(env={**BASE_ENV, "IOTFLOW_MQTT_MAX_PACKET": str(MAX_PACKET)}).start()
    yield srv
    srv.stop_and_check()
    srv.cleanup()


def test_v5_connack_announces_the_small_maximum(small_server, mqtt):
    device = new_device(make_user(small_server, "bearer"))
    m = mqtt(small_server, V5, key=device.key).connect_ok()
    assert getattr(m.connack_props, "MaximumPacketSize", None) == MAX_PACKET, m.connack_props


def test_oversized_packet_ends_the_connection(small_server, mqtt, version):
    device = new_device(make_user(small_server, "bearer"))
    m = mqtt(small_server, version, key=device.key).connect_ok()
    m.publish_ok(TELEMETRY, padded(1, MAX_PACKET - 1100))   # fits
    m.publish_nowait(TELEMETRY, padded(2, MAX_PACKET + 10))
    rc, from_server, props = m.wait_closed()
    if version == V5:
        assert from_server and rc == RC_PACKET_TOO_LARGE, \
            f"v5: closed with {rc:#x} (DISCONNECT from the server: {from_server}), expected 0x95"
    again = mqtt(small_server, version, key=device.key).connect_ok()
    again.round_trip()
    assert seqs(device.stored()) == [1], "the oversized message was stored"


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_oversized_packet_on_the_wire(small_server, version):
    device = new_device(make_user(small_server, "bearer"))
    raw = RawClient(small_server.mqtt_port, version)
    try:
        assert raw.connect(client_id="big", username="u", password=device.key)[1] == RC_SUCCESS
        body = json.dumps(padded(1, MAX_PACKET + 10)).encode()
        raw.send(publish_packet(version, TELEMETRY, body))
        _, reason = raw.until_closed(5)
        if version == 5:
            assert reason == RC_PACKET_TOO_LARGE, f"DISCONNECT reason {reason}, expected 0x95"
    finally:
        raw.close()
    assert device.stored() == []


# ------------------------------------------------------------ in flight

@pytest.fixture(scope="module")
def one_in_flight():
    """A server that lets a client have one QoS 1 message awaiting its PUBACK."""
    srv = MqttServer(env={**BASE_ENV, "IOTFLOW_MQTT_INFLIGHT": "1"}).start()
    yield srv
    srv.stop_and_check()
    srv.cleanup()


def test_v5_connack_announces_receive_maximum(one_in_flight, mqtt):
    device = new_device(make_user(one_in_flight, "bearer"))
    m = mqtt(one_in_flight, V5, key=device.key).connect_ok()
    assert getattr(m.connack_props, "ReceiveMaximum", None) == 1, m.connack_props


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_more_in_flight_than_receive_maximum(one_in_flight, version):
    """Five QoS 1 PUBLISHes in one write: v5 is past its Receive Maximum
    (DISCONNECT 0x93); 3.1.1 has none, and the server reads on as the
    PUBACKs free room — every one PUBACKed in order and stored."""
    device = new_device(make_user(one_in_flight, "bearer"))
    raw = RawClient(one_in_flight.mqtt_port, version)
    try:
        assert raw.connect(client_id="burst", username="u", password=device.key)[1] == RC_SUCCESS
        raw.send(b"".join(publish_packet(version, TELEMETRY, json.dumps({"data": {"seq": i}}).encode(),
                                         mid=i + 1) for i in range(5)))
        if version == 5:
            _, reason = raw.until_closed(WAIT)
            assert reason == RC_RECEIVE_MAXIMUM_EXCEEDED, \
                f"DISCONNECT reason {reason}, expected 0x93 (Receive Maximum exceeded)"
        else:
            acks = []
            while len(acks) < 5:
                ptype, _, body = raw.read(WAIT)
                assert ptype == PUBACK, f"packet type {ptype} {body!r}"
                acks.append(int.from_bytes(body[:2], "big"))
            assert acks == [1, 2, 3, 4, 5], f"PUBACKs out of order: {acks}"
            assert seqs(device.stored()) == [0, 1, 2, 3, 4]
    finally:
        raw.close()


# ------------------------------------------------------------ per device

def test_connections_per_device(start_server, mqtt, version):
    srv = start_server(env={"IOTFLOW_MQTT_CONNECTIONS_PER_DEVICE": "2"})
    device = new_device(make_user(srv, "bearer"))
    first = mqtt(srv, version, key=device.key, client_id="one").connect_ok()
    mqtt(srv, version, key=device.key, client_id="two").connect_ok()
    refused = mqtt(srv, version, key=device.key, client_id="three").connect()
    # v5 0x97 (Quota exceeded); 3.1.1 return code 3, which paho reads as 0x88
    assert refused == (RC_QUOTA_EXCEEDED if version == V5 else RC_SERVER_UNAVAILABLE), hex(refused)
    # taking over an existing client id is no new connection
    mqtt(srv, version, key=device.key, client_id="one").connect_ok()
    first.wait_closed()
    # another device of the same owner is counted apart
    other = new_device(make_user(srv, "bearer"))
    mqtt(srv, version, key=other.key, client_id="one").connect_ok()
