"""Subscriptions: devices/me/config delivers the newest configuration at
once (retain flag set) and on every change, a group's too;
devices/me/alerts delivers the device's alerts; clean and persistent
sessions (the subscriptions that survive a reconnect)."""
import json
import queue

import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

from mqtt_harness import (ALERTS, CONFIG, RC_GRANTED_QOS_1, V5, V311, create_group, expect,
                          new_device, unique)


def payload(msg):
    return json.loads(msg.payload)


def expect_config(m, device, version, retained=None):
    """The next message is `device`'s newest configuration at `version`,
    exactly the body of its own GET /devices/config."""
    msg = m.next_message()
    assert msg.topic == CONFIG, msg.topic
    body = payload(msg)
    assert body.get("version") == version, f"config version {body.get('version')}, expected {version}: {body}"
    assert body == device.own_config(), f"MQTT {body} != HTTP {device.own_config()}"
    if retained is not None:
        assert msg.retain == retained, f"retain flag {msg.retain}, expected {retained}"
    return body


def assert_no_more_messages(m):
    """After a round trip through the server, nothing else was queued."""
    m.round_trip()
    try:
        extra = m.messages.get_nowait()
    except queue.Empty:
        return
    raise AssertionError(f"unexpected message on {extra.topic}: {extra.payload!r}")


def test_current_config_at_once_then_every_change(connect, device, version):
    device.put_config({"interval": 30})
    m = connect(device, version)
    assert m.subscribe(CONFIG) == [RC_GRANTED_QOS_1]
    expect_config(m, device, 1, retained=True)
    device.put_config({"interval": 60, "mode": "eco"})
    # a change reaches an established subscription: retain 0 (3.1.1 §3.3.1.3)
    assert expect_config(m, device, 2, retained=False)["config"] == {"interval": 60, "mode": "eco"}
    device.put_config({"interval": 90})
    expect_config(m, device, 3, retained=False)
    assert_no_more_messages(m)


def test_no_config_yet_nothing_until_the_first(connect, device, version):
    m = connect(device, version)
    assert m.subscribe(CONFIG) == [RC_GRANTED_QOS_1]
    assert_no_more_messages(m)
    device.put_config({"first": True})
    expect_config(m, device, 1)


def test_v5_retain_handling_2_gets_changes_only(connect, device):
    device.put_config({"v": 1})
    m = connect(device, V5)
    assert m.subscribe(CONFIG, options=SubscribeOptions(qos=1, retainHandling=2)) == [RC_GRANTED_QOS_1]
    assert_no_more_messages(m)
    device.put_config({"v": 2})
    expect_config(m, device, 2, retained=False)


def test_granted_qos_is_at_most_1(connect, device, version):
    m = connect(device, version)
    assert m.subscribe(CONFIG, qos=0) == [0]
    device.put_config({"a": 1})
    assert m.next_message().qos == 0
    m2 = connect(device, version, client_id=unique("q2"))
    assert m2.subscribe(CONFIG, qos=2) == [RC_GRANTED_QOS_1]
    assert m2.next_message().qos == 1


def test_admin_put_reaches_the_device(connect, server, device, version):
    m = connect(device, version)
    m.subscribe(CONFIG)
    expect(server.admin.put(f"/devices/{device.id}/config", json={"by": "admin"}), 200)
    assert expect_config(m, device, 1)["updated_by"] == "admin"


def test_group_config_reaches_members(connect, user, device, version):
    other = new_device(user)
    group = create_group(user)
    for d in (device, other):
        expect(user.api.post(f"/groups/{group['id']}/devices", json={"device_id": d.id}), 201)
    device.put_config({"own": 1})
    clients = []
    for d in (device, other):
        m = connect(d, version)
        m.subscribe(CONFIG)
        clients.append(m)
    expect_config(clients[0], device, 1)
    expect(user.api.put(f"/groups/{group['id']}/config", json={"fleet": "blue"}), 200)
    assert expect_config(clients[0], device, 2)["config"] == {"fleet": "blue"}
    assert expect_config(clients[1], other, 1)["config"] == {"fleet": "blue"}


def test_config_reaches_every_connection_of_the_device(connect, device, version):
    clients = [connect(device, version, client_id=unique("c")) for _ in range(3)]
    for m in clients:
        m.subscribe(CONFIG)
    device.put_config({"all": 1})
    for m in clients:
        expect_config(m, device, 1)


def test_other_devices_config_does_not_leak(connect, user, device, version):
    other = new_device(user)
    m = connect(device, version)
    m.subscribe(CONFIG)
    other.put_config({"secret": 1})
    device.put_config({"mine": 1})
    assert expect_config(m, device, 1)["config"] == {"mine": 1}
    assert_no_more_messages(m)


def test_alerts_are_delivered(connect, user, device, version):
    m = connect(device, version)
    assert m.subscribe(ALERTS) == [RC_GRANTED_QOS_1]
    body = {"device_id": device.id, "severity": "warning", "message": "check the pump",
            "measurement": "pressure", "value": 3.5}
    alert = expect(user.api.post("/alerts", json=body), 201)["alert"]
    seen = []
    steps = ((None, "alert.raised", "active"), ("acknowledge", "alert.acknowledged", "acknowledged"),
             ("resolve", "alert.resolved", "resolved"))
    for action, event, status in steps:
        if action:
            expect(user.api.post(f"/alerts/{alert['id']}/{action}"), 200)
        msg = m.next_message()
        assert msg.topic == ALERTS, msg.topic
        got = payload(msg)   # as on GET /alerts/stream (docs/MQTT.md)
        assert got.get("type") == event, f"expected {event}, got {got}"
        seen.append(got["alert"])
        assert got["alert"].get("id") == alert["id"] and got["alert"].get("status") == status, \
            f"expected alert {alert['id']} {status}, got {got}"
    assert seen[0]["message"] == "check the pump" and seen[0]["device_id"] == device.id, seen[0]
    assert seen[-1] == expect(user.api.get(f"/alerts/{alert['id']}"), 200)["alert"]


# ------------------------------------------------------------ sessions

def persistent(version):
    """Keyword arguments for a session the server keeps after a disconnect."""
    return {"clean": False, "session_expiry": 300 if version == V5 else None}


def test_persistent_session_resumes_its_subscriptions(connect, device, version):
    cid = unique("persist")
    device.put_config({"v": 1})
    first = connect(device, version, client_id=cid, **persistent(version))
    assert first.session_present is False
    first.subscribe(CONFIG)
    expect_config(first, device, 1, retained=True)
    first.disconnect()

    again = connect(device, version, client_id=cid, **persistent(version))
    assert again.session_present is True, "CONNACK session present = 0 for a kept session"
    expect_config(again, device, 1)            # the newest config, delivered again
    device.put_config({"v": 2})                # no SUBSCRIBE on this connection
    expect_config(again, device, 2)


def test_clean_session_starts_fresh(connect, device, version):
    cid = unique("clean")
    first = connect(device, version, client_id=cid, **persistent(version))
    first.subscribe(CONFIG)
    first.disconnect()

    fresh = connect(device, version, client_id=cid, clean=True)
    assert fresh.session_present is False
    device.put_config({"v": 1})
    assert_no_more_messages(fresh)             # no subscription survived
    fresh.subscribe(CONFIG)
    expect_config(fresh, device, 1, retained=True)
    assert_no_more_messages(fresh)
    fresh.disconnect()
    # and the clean connection ended the old session for good
    last = connect(device, version, client_id=cid, **persistent(version))
    assert last.session_present is False


def test_v5_session_expiry_zero_keeps_nothing(connect, device):
    cid = unique("expiry0")
    first = connect(device, V5, client_id=cid, clean=False, session_expiry=0)
    first.subscribe(CONFIG)
    first.disconnect()
    again = connect(device, V5, client_id=cid, clean=False, session_expiry=0)
    assert again.session_present is False


def test_sessions_are_per_client_id(connect, device, version):
    a = connect(device, version, client_id=unique("a"), **persistent(version))
    a.subscribe(CONFIG)
    a.disconnect()
    b = connect(device, version, client_id=unique("b"), **persistent(version))
    assert b.session_present is False


def test_sessions_are_per_device(connect, user, device, version):
    cid = unique("shared-id")
    a = connect(device, version, client_id=cid, **persistent(version))
    a.subscribe(CONFIG)
    a.disconnect()
    other = new_device(user)
    b = connect(other, version, client_id=cid, **persistent(version))
    assert b.session_present is False
    device.put_config({"for": "device"})
    other.put_config({"for": "other"})
    b.subscribe(CONFIG)
    assert expect_config(b, other, 1)["config"] == {"for": "other"}


@pytest.mark.parametrize("version", [V311], ids=["v311"])
def test_v311_persistent_session_takes_config_changes_while_away(connect, device, version):
    """A change made while the client was away arrives on reconnect (the
    newest config is delivered when the session resumes)."""
    cid = unique("away")
    first = connect(device, version, client_id=cid, clean=False)
    first.subscribe(CONFIG)
    first.disconnect()
    device.put_config({"changed": "while away"})
    again = connect(device, version, client_id=cid, clean=False)
    assert again.session_present is True
    assert expect_config(again, device, 1)["config"] == {"changed": "while away"}
