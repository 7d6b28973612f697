"""/events and /events/summary: the event log — one event per state change
(written asynchronously: tests poll), filters, cursor paging, counts by
type, who sees what, bad input, online/offline transitions."""
import time

import pytest

from conftest import (HEX32_RE, TS_RE, expect, expect_error, expect_rejects,
                      key_client, make_user, register_device, unique)

POLL_SECONDS = 5.0


def events(client, **params):
    return expect(client.get("/events", params=params), 200)


def poll_events(client, want, **params):
    """The events matching params once there are at least `want` of them
    (the writer is asynchronous)."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        got = events(client, limit=1000, **params)["events"]
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def one_event(client, type_, **params):
    got = poll_events(client, 1, type=type_, **params)
    assert got, f"no {type_} event for {params}"
    return got[0]


def all_pages(client, limit, **params):
    seen, cursor, pages = [], None, 0
    while True:
        q = dict(params, limit=limit)
        if cursor:
            q["cursor"] = cursor
        body = events(client, **q)
        assert body["count"] == len(body["events"]) <= limit
        seen += body["events"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 1000


@pytest.fixture
def owner(bearer_users):
    return bearer_users.new()


@pytest.fixture
def device(owner):
    return register_device(owner)


def activate_device(server, device):
    """The device's first heartbeat: it switches itself on and comes online."""
    expect(key_client(server, device["api_key"]).post("/devices/heartbeat"), 200)


# ---------------------------------------------------------------- recorded

def test_event_shape_user_registered(owner):
    ev = one_event(owner.api, "user.registered")
    assert HEX32_RE.match(ev["id"]), ev
    assert TS_RE.match(ev["at"]), ev
    assert ev["user_id"] == owner.user_id and ev["device_id"] is None
    assert ev["details"] == {"username": owner.username}
    assert set(ev) == {"id", "type", "at", "user_id", "device_id", "details"}


def test_device_life_recorded(bearer_server, owner, device):
    api, admin, dev = owner.api, bearer_server.admin, device["id"]
    ev = one_event(api, "device.registered", device_id=dev)
    assert ev["details"] == {"name": device["name"], "device_type": "sensor"}
    assert ev["user_id"] == owner.user_id and ev["device_id"] == dev

    activate_device(bearer_server, device)
    ev = one_event(api, "device.status_changed", device_id=dev)
    assert ev["details"] == {"from": "inactive", "to": "active", "by": "device"}
    assert one_event(api, "device.online", device_id=dev)["details"]["last_seen"] is None

    expect(api.post(f"/devices/{dev}/rotate-key"), 200)
    assert one_event(api, "device.key_rotated", device_id=dev)["details"] == {"by": "owner"}

    expect(admin.put(f"/admin/devices/{dev}", json={"location": "attic"}), 200)
    ev = one_event(api, "device.updated", device_id=dev)
    assert ev["details"] == {"changed": ["location"], "by": "admin"}

    expect(admin.put(f"/admin/devices/{dev}/status", json={"status": "maintenance"}), 200)
    got = poll_events(api, 2, type="device.status_changed", device_id=dev)
    assert got[0]["details"] == {"from": "active", "to": "maintenance", "by": "admin"}

    expect(admin.delete(f"/admin/devices/{dev}"), 200)
    ev = one_event(api, "device.deleted", device_id=dev)  # the owner still sees it
    assert ev["details"] == {"name": device["name"], "by": "admin"}


def test_device_self_config_recorded(bearer_server, owner, device):
    dev = key_client(bearer_server, device["api_key"])
    expect(dev.put("/devices/config", json={"status": "maintenance", "firmware_version": "2.0"}),
           200)
    ev = one_event(owner.api, "device.updated", device_id=device["id"])
    assert ev["details"]["by"] == "device"
    assert set(ev["details"]["changed"]) == {"status", "firmware_version"}
    ev = one_event(owner.api, "device.status_changed", device_id=device["id"])
    assert ev["details"]["to"] == "maintenance" and ev["details"]["by"] == "device"


def test_user_life_recorded(bearer_server, owner):
    admin = bearer_server.admin
    expect(owner.api.put(f"/users/{owner.user_id}", json={"email": unique("e") + "@x.org"}), 200)
    ev = one_event(owner.api, "user.updated")
    assert ev["details"] == {"changed": ["email"], "by": "self"}
    expect(admin.patch(f"/users/{owner.user_id}/deactivate"), 200)
    expect(admin.patch(f"/users/{owner.user_id}/activate"), 200)
    for type_ in ("user.deactivated", "user.activated"):
        ev = one_event(admin, type_, user_id=owner.user_id)
        assert ev["details"] == {"by": "admin"} and ev["user_id"] == owner.user_id


def test_user_deleted_recorded_for_admin_only(bearer_server, bearer_users):
    admin = bearer_server.admin
    gone = bearer_users.new()
    register_device(gone)
    one_event(admin, "device.registered", user_id=gone.user_id)
    expect(admin.delete(f"/users/{gone.user_id}"), 200)
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        mine = [e for e in events(admin, type="user.deleted", limit=1000)["events"]
                if e["details"]["user_id"] == gone.user_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(mine) == 1, "no user.deleted event"
    assert mine[0]["user_id"] is None and mine[0]["details"]["username"] == gone.username


def test_heartbeat_when_online_records_nothing_new(bearer_server, owner, device):
    activate_device(bearer_server, device)
    one_event(owner.api, "device.online", device_id=device["id"])
    for _ in range(3):
        activate_device(bearer_server, device)
    expect(key_client(bearer_server, device["api_key"]).post(
        "/telemetry", json={"data": {"t": 1}}), 201)
    time.sleep(0.3)
    assert len(events(owner.api, type="device.online", device_id=device["id"])["events"]) == 1


def test_online_offline_transitions(start_server):
    srv = start_server(env={"IOTFLOW_ONLINE_WINDOW": "1"})
    user = make_user(srv, "bearer")
    device = register_device(user)
    dev = key_client(srv, device["api_key"])
    expect(dev.post("/telemetry", json={"data": {"t": 1}}), 201)
    one_event(user.api, "device.online", device_id=device["id"])
    off = poll_events(user.api, 1, type="device.offline", device_id=device["id"])
    assert off, "no device.offline after the 1 s window"
    assert TS_RE.match(off[0]["details"]["last_seen"])
    expect(dev.post("/devices/heartbeat"), 200)
    back = poll_events(user.api, 2, type="device.online", device_id=device["id"])
    assert len(back) == 2 and back[0]["details"]["last_seen"] is not None
    # newest first across types: online, offline, online
    order = [e["type"] for e in events(user.api, device_id=device["id"])["events"]
             if e["type"] in ("device.online", "device.offline")]
    assert order[:3] == ["device.online", "device.offline", "device.online"]


# ---------------------------------------------------------------- filters, paging

@pytest.fixture
def busy(bearer_server, owner):
    """Two devices with 10 key rotations each: 24 device events."""
    devices = [register_device(owner) for _ in range(2)]
    for d in devices:
        for _ in range(10):
            expect(owner.api.post(f"/devices/{d['id']}/rotate-key"), 200)
    assert len(poll_events(owner.api, 20, type="device.key_rotated")) == 20
    return devices


def test_filters(owner, busy):
    d0 = busy[0]["id"]
    got = events(owner.api, device_id=d0, limit=1000)["events"]
    assert len(got) == 11 and {e["device_id"] for e in got} == {d0}
    got = events(owner.api, type="device.registered", limit=1000)["events"]
    assert len(got) == 2 and {e["type"] for e in got} == {"device.registered"}
    everything = events(owner.api, limit=1000)["events"]
    assert len(everything) == 23  # and user.registered
    mid = everything[10]["at"]
    newer = events(owner.api, since=mid, limit=1000)["events"]
    older = events(owner.api, until=mid, limit=1000)["events"]
    assert all(e["at"] >= mid for e in newer) and all(e["at"] <= mid for e in older)
    assert len(newer) + len(older) >= 23
    assert events(owner.api, since="-1h")["count"] == 23
    assert events(owner.api, since="now", until="now")["count"] == 0
    assert events(owner.api, until="-1d")["count"] == 0
    assert events(owner.api, since="-1h", until="-2h") == {
        "status": "success", "events": [], "count": 0, "limit": 100, "next_cursor": None}
    assert expect(owner.api.get("/events/summary", params={"since": "now", "until": "-1h"}),
                  200)["total"] == 0


def test_newest_first_paging_without_gaps(owner, busy):
    everything = events(owner.api, limit=1000)["events"]
    keys = [(e["at"], e["id"]) for e in everything]
    assert keys == sorted(keys, reverse=True), "not newest first"
    for limit in (1, 7, 23, 100):
        paged, pages = all_pages(owner.api, limit)
        assert [e["id"] for e in paged] == [e["id"] for e in everything], f"limit {limit}"
        assert pages == -(-len(everything) // limit)  # the last page says it is the last
    paged, _ = all_pages(owner.api, 4, type="device.key_rotated", device_id=busy[1]["id"])
    assert len(paged) == len({e["id"] for e in paged}) == 10


def test_summary(owner, busy):
    body = expect(owner.api.get("/events/summary"), 200)
    assert body["by_type"] == {"user.registered": 1, "device.registered": 2,
                               "device.key_rotated": 20}
    assert body["total"] == 23
    body = expect(owner.api.get("/events/summary", params={"device_id": busy[0]["id"]}), 200)
    assert body["by_type"] == {"device.registered": 1, "device.key_rotated": 10}
    body = expect(owner.api.get("/events/summary", params={"type": "nothing.here"}), 200)
    assert body == {"status": "success", "total": 0, "by_type": {}}


# ---------------------------------------------------------------- who sees what

def test_owner_other_admin(bearer_server, bearer_users, owner, busy):
    other = bearer_users.new()
    one_event(other.api, "user.registered")
    mine = events(other.api, limit=1000)["events"]
    assert {e["user_id"] for e in mine} == {other.user_id}
    assert events(other.api, device_id=busy[0]["id"])["count"] == 0
    expect_error(other.api.get("/events", params={"user_id": owner.user_id}), 403)
    expect_error(other.api.get("/events/summary", params={"user_id": owner.user_id}), 403)
    # one's own user_id is allowed
    assert events(other.api, user_id=other.user_id)["count"] == len(mine)
    admin = bearer_server.admin
    assert events(admin, user_id=owner.user_id, limit=1000)["count"] == 23
    assert events(admin, limit=1000)["count"] > 23
    summary = expect(admin.get("/events/summary", params={"user_id": owner.user_id}), 200)
    assert summary["total"] == 23
    expect_error(admin.get("/events", params={"user_id": "0" * 32}), 404)
    expect_error(bearer_server.api.get("/events"), 401)
    expect_error(bearer_server.api.get("/events/summary"), 401)
    expect_error(key_client(bearer_server, busy[0]["api_key"]).get("/events"), 401)


# ---------------------------------------------------------------- bad input

def test_bad_input(owner):
    cases = {
        "since-word": {"since": "yesterday"}, "until-bad": {"until": "2024-13-01"},
        "cursor-junk": {"cursor": "abc"}, "cursor-no-id": {"cursor": "123_"},
        "cursor-bad-id": {"cursor": "123_a b"}, "cursor-no-sep": {"cursor": "123"},
        "limit-0": {"limit": "0"}, "limit-1001": {"limit": "1001"}, "limit-neg": {"limit": "-1"},
        "limit-word": {"limit": "ten"}, "type-upper": {"type": "Device.Online"},
        "type-long": {"type": "a" * 49}, "type-space": {"type": "a b"},
        "device-word": {"device_id": "x"}, "device-zero": {"device_id": "0"},
        "user-short": {"user_id": "abc"},
    }
    expect_rejects(lambda p: owner.api.get("/events", params=p), cases, 400, 403)
    summary_cases = {k: v for k, v in cases.items() if "cursor" not in k and "limit" not in k}
    expect_rejects(lambda p: owner.api.get("/events/summary", params=p), summary_cases, 400, 403)


def test_limit_bounds_and_cursor_shape(owner):
    body = events(owner.api)
    assert body["limit"] == 100
    assert events(owner.api, limit=1000)["limit"] == 1000
    body = events(owner.api, limit=1)
    assert body["count"] == 1 and body["next_cursor"] is None  # only user.registered
    register_device(owner)
    poll_events(owner.api, 2)
    body = events(owner.api, limit=1)
    assert isinstance(body["next_cursor"], str) and body["next_cursor"]
    rest = events(owner.api, limit=1, cursor=body["next_cursor"])
    assert rest["count"] == 1 and rest["next_cursor"] is None
    assert rest["events"][0]["type"] == "user.registered"
