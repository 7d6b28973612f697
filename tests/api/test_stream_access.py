"""Live streams keep to their credentials and to their share of slots.

Revocation: a stream ends, with a last block
    event: revoked
    data: {"reason": "<why>"}
once the credential it was opened with no longer holds — logout, session
expiry, password change, deactivation, user or device deletion, key
rotation, loss of admin rights — within IOTFLOW_STREAM_RECHECK seconds (1 s
here), and at once for a device whose key or status a device notice
reports.

Caps: IOTFLOW_STREAMS_PER_USER (a device key's streams count for its
owner; the admin token for nobody) and IOTFLOW_STREAMS_PER_DEVICE (whoever
opens them) answer 429 + Retry-After with a JSON error; the server-wide
limit (half of IOTFLOW_MAX_CONNECTIONS) answers 503 to everyone, the admin
included."""
import json
import threading
import time

import pytest

from conftest import (Server, expect, expect_error, key_client, login_token, make_user,
                      promote_to_admin, register_device)
from test_telemetry_stream import Stream

RECHECK = 1       # IOTFLOW_STREAM_RECHECK of the servers below
WAIT = 15         # seconds to wait for an expected end (recheck + slack for slow builds)


def revoked_reason(stream, timeout=WAIT):
    """Reads the stream to its end; returns the reason of its `revoked`
    event (fails if it stays open past `timeout` or ends without one)."""
    deadline = time.monotonic() + timeout
    reason = None
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"stream still open {timeout}s later; revoked reason so far: {reason}"
        block = stream.next_block(left)
        if block.get("event") == "revoked":
            reason = json.loads(block["data"])["reason"]
        if "closed" in block:
            assert reason is not None, f"stream ended without a revoked event: {block}"
            return reason


def bearer(server, token):
    return server.api.with_headers({"Authorization": f"Bearer {token}"})


def live(client, device, key, streams):
    """A stream that has received one event (so it is subscribed)."""
    st = streams(client, device["id"])
    assert st.ok, st.r.text
    marker = time.monotonic_ns()
    expect(key_client(client.server, key).post("/telemetry", json={"data": {"m": marker}}), 201)
    assert st.events(1)[0]["measurements"] == {"m": marker}
    return st


def still_live(st, key):
    """The stream still delivers: a fresh message arrives (earlier ones may
    come first)."""
    marker = time.monotonic_ns()
    expect(key_client(st.server, key).post("/telemetry", json={"data": {"m": marker}}), 201)
    deadline = time.monotonic() + WAIT
    while st.events(1, timeout=max(0.1, deadline - time.monotonic()))[0]["measurements"] != \
            {"m": marker}:
        pass


@pytest.fixture
def streams():
    opened = []

    def _open(client, dev_id, **kw):
        s = Stream(client, dev_id, **kw)
        s.server = client.server
        opened.append(s)
        return s

    yield _open
    for s in opened:
        s.close()


def _server(**kw):
    env = {"IOTFLOW_STREAM_RECHECK": str(RECHECK), **kw.pop("env", {})}
    return Server(env=env, **kw).start()


@pytest.fixture(scope="module")
def rs():
    """A server re-checking streams every second."""
    s = _server()
    yield s
    s.stop_and_check()
    s.cleanup()


@pytest.fixture(scope="module")
def legacy_rs():
    s = _server(trust_user_id=True)
    yield s
    s.stop_and_check()
    s.cleanup()


# ------------------------------------------------------------------ revocation

def test_logout_ends_that_sessions_streams_only(rs, streams):
    user = make_user(rs, "bearer")
    dev = register_device(user)
    other_token = login_token(rs, user.username, user.password)
    gone = live(user.api, dev, dev["api_key"], streams)
    stays = live(bearer(rs, other_token), dev, dev["api_key"], streams)
    expect(user.api.post("/auth/logout"), 200)
    assert revoked_reason(gone) == "session_ended"
    still_live(stays, dev["api_key"])


def test_password_change_ends_streams(rs, streams):
    user = make_user(rs, "bearer")
    dev = register_device(user)
    st = live(user.api, dev, dev["api_key"], streams)
    expect(user.api.put(f"/users/{user.user_id}", json={"password": "pw-changed-123"}), 200)
    assert revoked_reason(st) == "session_ended"


def test_deactivation_ends_streams(rs, streams):
    user = make_user(rs, "bearer")
    dev = register_device(user)
    st = live(user.api, dev, dev["api_key"], streams)
    expect(rs.admin.patch(f"/users/{user.user_id}/deactivate"), 200)
    assert revoked_reason(st) == "user_inactive"


def test_deactivation_ends_legacy_header_streams(legacy_rs, streams):
    user = make_user(legacy_rs, "legacy")
    dev = register_device(user)
    st = live(user.api, dev, dev["api_key"], streams)
    expect(legacy_rs.admin.patch(f"/users/{user.user_id}/deactivate"), 200)
    assert revoked_reason(st) == "user_inactive"


def test_session_expiry_ends_streams(streams):
    s = _server(env={"IOTFLOW_SESSION_TTL": "4"})
    try:
        user = make_user(s, "bearer")
        dev = register_device(user)
        token = login_token(s, user.username, user.password)   # a fresh 4 s session
        st = live(bearer(s, token), dev, dev["api_key"], streams)
        assert revoked_reason(st, timeout=4 + WAIT) == "session_ended"
    finally:
        s.stop_and_check()
        s.cleanup()


def test_key_rotation_ends_the_old_keys_streams(rs, streams):
    user = make_user(rs, "bearer")
    dev = register_device(user)
    by_key = live(key_client(rs, dev["api_key"]), dev, dev["api_key"], streams)
    by_owner = live(user.api, dev, dev["api_key"], streams)
    new_key = expect(user.api.post(f"/devices/{dev['id']}/rotate-key"), 200)["api_key"]
    assert revoked_reason(by_key) == "key_revoked"
    still_live(by_owner, new_key)
    live(key_client(rs, new_key), dev, new_key, streams)       # the new key streams


def test_key_rotation_ends_streams_at_once_through_the_device_notice(streams):
    """Re-check every hour: only the device notice can end it in time."""
    s = Server(env={"IOTFLOW_STREAM_RECHECK": "3600"}).start()
    try:
        user = make_user(s, "bearer")
        dev = register_device(user)
        st = live(key_client(s, dev["api_key"]), dev, dev["api_key"], streams)
        expect(user.api.post(f"/devices/{dev['id']}/rotate-key"), 200)
        assert revoked_reason(st, timeout=5) == "key_revoked"
    finally:
        s.stop_and_check()
        s.cleanup()


def test_device_switched_off_by_an_admin_ends_its_keys_streams(rs, streams):
    """The key is refused from now on (403), so its open stream ends too;
    the owner's stream of the same device stays."""
    user = make_user(rs, "bearer")
    dev = register_device(user)
    by_key = live(key_client(rs, dev["api_key"]), dev, dev["api_key"], streams)
    by_owner = live(user.api, dev, dev["api_key"], streams)
    expect(rs.admin.put(f"/admin/devices/{dev['id']}/status", json={"status": "inactive"}), 200)
    assert revoked_reason(by_key) == "device_refused"
    expect(rs.admin.put(f"/admin/devices/{dev['id']}/status", json={"status": "active"}), 200)
    still_live(by_owner, dev["api_key"])


def test_owner_deactivation_ends_the_device_keys_streams(rs, streams):
    user = make_user(rs, "bearer")
    dev = register_device(user)
    by_key = live(key_client(rs, dev["api_key"]), dev, dev["api_key"], streams)
    expect(rs.admin.patch(f"/users/{user.user_id}/deactivate"), 200)
    assert revoked_reason(by_key) == "device_refused"


def test_device_deletion_ends_streams_with_a_reason(rs, streams):
    user = make_user(rs, "bearer")
    dev = register_device(user)
    st = live(user.api, dev, dev["api_key"], streams)
    expect(rs.admin.delete(f"/admin/devices/{dev['id']}"), 200)
    assert revoked_reason(st) == "device_deleted"


def test_user_deletion_ends_streams(rs, streams):
    user = make_user(rs, "bearer")
    dev = register_device(user)
    by_user = live(user.api, dev, dev["api_key"], streams)
    by_key = live(key_client(rs, dev["api_key"]), dev, dev["api_key"], streams)
    expect(rs.admin.delete(f"/users/{user.user_id}"), 200)
    assert revoked_reason(by_user) in ("device_deleted", "user_deleted")
    assert revoked_reason(by_key) in ("device_deleted", "key_revoked")


def test_demoted_admin_loses_streams_of_others_devices(rs, streams):
    owner = make_user(rs, "bearer")
    dev = register_device(owner)
    admin = promote_to_admin(make_user(rs, "bearer"))
    st = live(admin.api, dev, dev["api_key"], streams)
    own = live(owner.api, dev, dev["api_key"], streams)
    expect(rs.admin.put(f"/users/{admin.user_id}", json={"is_admin": False}), 200)
    assert revoked_reason(st) == "access_revoked"
    still_live(own, dev["api_key"])


def test_admin_token_streams_stay(rs, streams):
    owner = make_user(rs, "bearer")
    dev = register_device(owner)
    st = live(rs.admin, dev, dev["api_key"], streams)
    user_st = live(owner.api, dev, dev["api_key"], streams)
    expect(owner.api.post("/auth/logout"), 200)
    assert revoked_reason(user_st) == "session_ended"   # a re-check pass ran ...
    still_live(st, dev["api_key"])                 # ... and kept the admin's


# ------------------------------------------------------------------ caps

@pytest.fixture(scope="module")
def capped():
    """3 streams per user, 2 per device, 10 in all (20 connections)."""
    s = Server(env={"IOTFLOW_STREAMS_PER_USER": "3", "IOTFLOW_STREAMS_PER_DEVICE": "2",
                    "IOTFLOW_MAX_CONNECTIONS": "20"}).start()
    yield s
    s.stop_and_check()
    s.cleanup()


def refused(stream, status):
    """The refusal's JSON error body. Checks the status first: describing an
    accepted stream would read its body, which never ends."""
    assert stream.r.status_code == status, \
        f"stream opened with {stream.r.status_code}, expected {status}"
    return expect_error(stream.r, status)


def expect_cap(stream, what):
    body = refused(stream, 429)
    assert "stream" in body["error"].lower(), body
    assert what in body["message"], body
    assert int(stream.r.headers["Retry-After"]) >= 1, dict(stream.r.headers)


def open_until_ok(client, dev_id, streams, seconds=10):
    """A slot given back is free again within seconds (polls with a deadline)."""
    deadline = time.monotonic() + seconds
    while True:
        st = streams(client, dev_id)
        if st.ok:
            return st
        assert time.monotonic() < deadline, f"no slot within {seconds}s: {st.r.status_code} {st.r.text}"
        st.close()
        time.sleep(0.05)


def test_per_user_cap(capped, streams):
    hog, other = make_user(capped, "bearer"), make_user(capped, "bearer")
    devs = [register_device(hog) for _ in range(4)]
    held = [streams(hog.api, d["id"]) for d in devs[:3]]
    assert all(st.ok for st in held), [st.r.text for st in held]
    expect_cap(streams(hog.api, devs[3]["id"]), "per user")
    # a device key counts for its owner
    expect_cap(streams(key_client(capped, devs[3]["api_key"]), devs[3]["id"]), "per user")
    # everyone else is unaffected
    mine = register_device(other)
    assert streams(other.api, mine["id"]).ok
    # closing one gives the slot back
    held[0].close()
    open_until_ok(hog.api, devs[3]["id"], streams)


def test_per_device_cap_applies_to_everyone(capped, streams):
    owner = make_user(capped, "bearer")
    dev, other = register_device(owner), register_device(owner)
    assert streams(owner.api, dev["id"]).ok
    assert streams(key_client(capped, dev["api_key"]), dev["id"]).ok
    expect_cap(streams(capped.admin, dev["id"]), "per device")
    assert streams(capped.admin, other["id"]).ok


def test_admin_token_has_no_user_cap_but_the_global_one(capped, streams):
    owner = make_user(capped, "bearer")
    devs = [register_device(owner) for _ in range(11)]
    opened = [streams(capped.admin, d["id"]) for d in devs[:10]]
    assert all(st.ok for st in opened), [st.r.status_code for st in opened]
    extra = streams(capped.admin, devs[10]["id"])
    body = refused(extra, 503)
    assert "stream" in body["error"].lower(), body


def test_concurrent_opens_cannot_pass_a_cap_together(capped, streams):
    """The slot is checked and taken under one lock: of 8 simultaneous
    opens on one device (cap 2), exactly 2 get a stream."""
    owner = make_user(capped, "bearer")
    dev = register_device(owner)
    barrier = threading.Barrier(8)
    results = [None] * 8

    def open_one(i):
        barrier.wait(timeout=WAIT)
        results[i] = streams(capped.admin, dev["id"], read=False)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT)
    codes = sorted(st.r.status_code for st in results)
    assert codes == [200, 200] + [429] * 6, codes
