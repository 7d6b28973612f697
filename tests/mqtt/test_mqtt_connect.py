"""CONNECT: the device's API key is the password (the user name is
ignored), the refusals and their codes on 3.1.1 and 5.0, what a v5 CONNACK
announces, client ids the server assigns, and keep-alive."""
import time

import pytest

from mqtt_harness import (RC_BAD_CREDENTIALS, RC_NOT_AUTHORIZED, RC_SUCCESS, TELEMETRY, V5,
                          V311, V311_BAD_CREDENTIALS, V311_ID_REJECTED, V311_NOT_AUTHORIZED,
                          expect, make_user, new_device)
from raw_mqtt import CONNACK, PINGREQ, PINGRESP, RawClient, connect_packet

# paho reports a 3.1.1 CONNACK return code as the v5 reason code of the
# same meaning (4 -> 0x86, 5 -> 0x87); the raw tests below read the byte.
BAD_CREDENTIALS = RC_BAD_CREDENTIALS
KEEPALIVE_MAX = 600   # IOTFLOW_MQTT_KEEPALIVE_MAX's default


@pytest.mark.parametrize("username", ["device", "anything at all", ""])
def test_good_key_connects(mqtt, device, version, username):
    m = mqtt(device.server, version, key=device.key, username=username)
    assert m.connect() == RC_SUCCESS
    assert m.session_present is False


@pytest.mark.parametrize("key", ["wrong-key", "", "x" * 32])
def test_bad_key_is_refused(mqtt, device, version, key):
    m = mqtt(device.server, version, key=key)
    assert m.connect() == BAD_CREDENTIALS
    assert m.wait_closed() is not None


def test_missing_password_is_refused(mqtt, device, version):
    m = mqtt(device.server, version, key=None)   # user name, no password
    assert m.connect() == BAD_CREDENTIALS


def test_no_credentials_at_all_is_refused(mqtt, device, version):
    m = mqtt(device.server, version, username=None)
    assert m.connect() == BAD_CREDENTIALS


@pytest.mark.parametrize("version, expected", [(4, V311_BAD_CREDENTIALS), (5, RC_BAD_CREDENTIALS)],
                         ids=["v311", "v5"])
@pytest.mark.parametrize("password", ["not-a-key", None])
def test_refusal_codes_on_the_wire(server, device, version, expected, password):
    raw = RawClient(server.mqtt_port, version)
    try:
        present, code = raw.connect(client_id="raw", username="u", password=password)
        assert (present, code) == (False, expected), f"CONNACK {present}, {code:#x}"
        raw.until_closed(5)
    finally:
        raw.close()


def test_v5_password_without_user_name(server, device):
    raw = RawClient(server.mqtt_port, 5)
    try:
        assert raw.connect(client_id="no-user", password=device.key) == (False, RC_SUCCESS)
    finally:
        raw.close()


def test_deactivated_owner_is_refused(mqtt, server, version):
    owner = make_user(server, "bearer")
    device = new_device(owner)
    expect(server.admin.put(f"/users/{owner.user_id}", json={"is_active": False}), 200)
    m = mqtt(server, version, key=device.key)
    assert m.connect() == RC_NOT_AUTHORIZED   # 3.1.1: return code 5


def test_deactivated_owner_code_on_the_wire(server):
    owner = make_user(server, "bearer")
    device = new_device(owner)
    expect(server.admin.put(f"/users/{owner.user_id}", json={"is_active": False}), 200)
    raw = RawClient(server.mqtt_port, 4)
    try:
        assert raw.connect(client_id="x", username="u", password=device.key) == \
            (False, V311_NOT_AUTHORIZED)
    finally:
        raw.close()


def test_device_of_any_status_connects(mqtt, server, device, version):
    expect(server.admin.put(f"/admin/devices/{device.id}/status", json={"status": "maintenance"}), 200)
    assert mqtt(server, version, key=device.key).connect() == RC_SUCCESS


def test_v5_connack_announces_the_limits(connect, device):
    m = connect(device, V5)
    props = m.connack_props
    want = {"MaximumQoS": 1, "RetainAvailable": 0, "WildcardSubscriptionAvailable": 0,
            "SharedSubscriptionAvailable": 0, "SubscriptionIdentifierAvailable": 0,
            "ReceiveMaximum": 64}
    got = {k: getattr(props, k, None) for k in want}
    assert got == want, f"CONNACK properties {props}"
    assert getattr(props, "MaximumPacketSize", 0) > 1024 * 1024, props   # MAX_BODY + 1024
    assert getattr(props, "TopicAliasMaximum", 0) == 0, props
    assert getattr(props, "ServerKeepAlive", None) is None, \
        f"keep-alive 30 is within the maximum, yet Server Keep Alive is set: {props}"


@pytest.mark.parametrize("asked, expected", [(0, KEEPALIVE_MAX), (KEEPALIVE_MAX + 400, KEEPALIVE_MAX)])
def test_v5_server_keep_alive(connect, device, asked, expected):
    m = connect(device, V5, keepalive=asked)
    assert getattr(m.connack_props, "ServerKeepAlive", None) == expected, m.connack_props


def test_v5_empty_client_id_is_assigned(connect, device):
    m = connect(device, V5, client_id="")
    assigned = getattr(m.connack_props, "AssignedClientIdentifier", "")
    assert assigned, f"no Assigned Client Identifier: {m.connack_props}"
    m.publish_ok(TELEMETRY, {"data": {"x": 1}})


def test_v311_empty_client_id_with_clean_session(connect, device):
    connect(device, V311, client_id="", clean=True).publish_ok(TELEMETRY, {"data": {"x": 1}})


def test_v311_empty_client_id_without_clean_session_is_rejected(server, device):
    # paho refuses to send this; the 3.1.1 spec wants return code 2
    raw = RawClient(server.mqtt_port, 4)
    try:
        assert raw.connect(client_id="", username="u", password=device.key, clean=False) == \
            (False, V311_ID_REJECTED)
    finally:
        raw.close()


@pytest.mark.parametrize("version, expected", [(4, V311_ID_REJECTED), (5, 0x85)], ids=["v311", "v5"])
def test_client_id_over_256_bytes_is_refused(server, device, version, expected):
    raw = RawClient(server.mqtt_port, version)
    try:
        assert raw.connect(client_id="c" * 257, username="u", password=device.key) == (False, expected)
    finally:
        raw.close()


def test_unknown_protocol_level_is_refused(server, device):
    raw = RawClient(server.mqtt_port, 3)   # MQTT 3.1's level, with 3.1.1's name
    try:
        raw.send(connect_packet(3, client_id="old", username="u", password=device.key))
        ptype, _, body = raw.read()
        assert (ptype, body[1]) == (CONNACK, 1), f"packet type {ptype} {body!r}: expected CONNACK 1"
        raw.until_closed(5)
    finally:
        raw.close()


# ------------------------------------------------------------ keep-alive

@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_silent_client_is_closed_after_keep_alive(server, device, version):
    """keep-alive 1 s and then nothing: closed after 1.5 s (v5: DISCONNECT
    0x8D first), well before 3 s."""
    raw = RawClient(server.mqtt_port, version)
    try:
        assert raw.connect(client_id="silent", username="u", password=device.key,
                           keepalive=1) == (False, RC_SUCCESS)
        waited, reason = raw.until_closed(3.0)
        assert waited >= 1.0, f"closed after {waited:.2f} s, before the keep-alive of 1 s"
        if version == 5:
            assert reason == 0x8D, f"v5 DISCONNECT reason {reason}, expected 0x8D (keep-alive timeout)"
    finally:
        raw.close()


def test_pings_keep_a_connection_alive(server, device):
    raw = RawClient(server.mqtt_port, 4)
    try:
        assert raw.connect(client_id="pinger", username="u", password=device.key,
                           keepalive=1)[1] == RC_SUCCESS
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            raw.send(bytes([PINGREQ << 4, 0]))
            ptype, _, _ = raw.read(timeout=2)
            assert ptype == PINGRESP
            time.sleep(0.5)   # the pace of the pings, not a wait for a result
    finally:
        raw.close()
