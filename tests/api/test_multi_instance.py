"""Two iotflowd instances on one PostgreSQL and one Redis, as behind a load
balancer: whatever a client does on instance A holds on instance B.

Runs in the PostgreSQL + Redis pass of `make test` (scripts/services.sh
started the servers); the embedded stores are one process's own, so the
embedded pass skips this file.
"""
import time

import pytest

from conftest import (SERVER_BACKENDS, Server, expect, expect_error, fresh_backends,
                      key_client, login_token, make_user, register_device, unique)
from test_stream_access import revoked_reason
from test_telemetry_stream import Stream

pytestmark = pytest.mark.skipif(not SERVER_BACKENDS,
                                reason="needs PostgreSQL + Redis (the second pass of make test)")


def start_pair(env):
    """Instances A and B sharing one namespace on the servers."""
    shared = fresh_backends()
    return Server(backends=shared, env=env).start(), Server(backends=shared, env=env).start()


def stop_pair(servers):
    for s in servers:
        s.stop_and_check()
        s.cleanup()


@pytest.fixture(scope="module")
def pair():
    servers = start_pair({"IOTFLOW_KEY_CACHE_TTL_MS": "1000"})
    yield servers
    stop_pair(servers)


@pytest.fixture
def limited_pair():
    """A pair allowing 6 logins/registrations per minute per client IP."""
    servers = start_pair({"IOTFLOW_AUTH_RATE_LIMIT": "6"})
    yield servers
    stop_pair(servers)


def until(check, seconds, what):
    """Polls check() until it is true; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return
        assert time.monotonic() < deadline, f"{what}: not seen within {seconds} s"
        time.sleep(0.02)


def bearer(server, token):
    return server.api.with_headers({"Authorization": f"Bearer {token}"})


def test_user_registered_on_a_logs_in_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    token = login_token(b, user.username, user.password)
    devices = expect(bearer(b, token).get(f"/devices/user/{user.user_id}"), 200)
    assert devices["devices"] == [], devices


def test_session_from_a_works_on_b_and_logout_on_a_ends_it_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    on_b = bearer(b, user.token)
    expect(on_b.get(f"/devices/user/{user.user_id}"), 200)
    expect(bearer(a, user.token).post("/auth/logout"), 200)
    expect_error(on_b.get(f"/devices/user/{user.user_id}"), 401)


def test_device_registered_on_a_authenticates_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    r = key_client(b, dev["api_key"]).post("/telemetry", json={"data": {"t": 21.5}})
    expect(r, 201)
    listed = expect(bearer(b, user.token).get(f"/devices/user/{user.user_id}"), 200)
    assert [d["id"] for d in listed["devices"]] == [dev["id"]], listed


def test_key_rotated_on_a_is_refused_on_b_within_a_second(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    old_on_b = key_client(b, dev["api_key"])
    expect(old_on_b.post("/telemetry/batch", json=[{"data": {"x": 1}}]), 201)  # warm B's key cache
    rotated = expect(bearer(a, user.token).post(f"/devices/{dev['id']}/rotate-key"), 200)
    t0 = time.monotonic()
    until(lambda: old_on_b.post("/telemetry", json={"data": {"x": 2}}).status_code == 401,
          1.0, "old key refused on B")
    assert time.monotonic() - t0 <= 1.0
    expect(key_client(b, rotated["api_key"]).post("/telemetry", json={"data": {"x": 3}}), 201)


def test_deleting_a_device_on_a_refuses_its_key_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    on_b = key_client(b, dev["api_key"])
    expect(on_b.post("/telemetry", json={"data": {"x": 1}}), 201)
    expect(a.admin.delete(f"/admin/devices/{dev['id']}"), 200)
    until(lambda: on_b.post("/telemetry", json={"data": {"x": 2}}).status_code == 401,
          1.0, "deleted device's key refused on B")


def test_login_rate_limit_is_shared(limited_pair):
    """The limit (6 per minute per client IP here) counts requests to both
    instances together."""
    a, b = limited_pair
    name = unique("nobody")
    statuses = []
    for i in range(8):
        server = a if i % 2 == 0 else b
        r = server.api.post("/auth/login", json={"username": name, "password": "wrong-pw"})
        statuses.append(r.status_code)
    assert statuses[:6] == [401] * 6, statuses
    assert statuses[6:] == [429, 429], statuses
    r = a.api.post("/auth/login", json={"username": name, "password": "wrong-pw"})
    expect_error(r, 429)
    assert int(r.headers["Retry-After"]) >= 1


def test_telemetry_posted_to_a_reaches_a_stream_opened_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    stream = Stream(bearer(b, user.token), dev["id"])
    try:
        assert stream.ok, stream.r.status_code
        time.sleep(0.2)   # B's subscription reaches Redis
        expect(key_client(a, dev["api_key"]).post("/telemetry", json={"data": {"t": 1}}), 201)
        expect(key_client(a, dev["api_key"]).post(
            "/telemetry/batch", json=[{"data": {"t": 2}}, {"data": {"t": 3}}]), 201)
        events = stream.events(3)
        assert [e["measurements"]["t"] for e in events] == [1, 2, 3], events
        assert all(e["device_id"] == dev["id"] for e in events), events
    finally:
        stream.close()


def test_deleting_a_device_on_a_ends_its_stream_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    stream = Stream(bearer(b, user.token), dev["id"])
    try:
        assert stream.ok
        time.sleep(0.2)
        expect(a.admin.delete(f"/admin/devices/{dev['id']}"), 200)
        deadline = time.monotonic() + 10
        while True:
            block = stream.next_block(max(0.1, deadline - time.monotonic()))
            if "closed" in block:
                break
            assert time.monotonic() < deadline, "the stream on B stayed open"
    finally:
        stream.close()


@pytest.fixture(scope="module")
def recheck_pair():
    """A pair re-checking live streams' credentials every second."""
    servers = start_pair({"IOTFLOW_STREAM_RECHECK": "1"})
    yield servers
    stop_pair(servers)


def _live_stream_on(server, client, dev):
    """A stream on `server` that has received one event (it is subscribed)."""
    stream = Stream(client, dev["id"])
    assert stream.ok, stream.r.text
    marker = time.monotonic_ns()
    deadline = time.monotonic() + 10
    # the subscription may reach Redis after the 200: post until one arrives
    while True:
        expect(key_client(server, dev["api_key"]).post("/telemetry", json={"data": {"m": marker}}),
               201)
        try:
            stream.events(1, timeout=0.5)
            return stream
        except AssertionError:
            assert time.monotonic() < deadline, "stream on B received nothing"


def test_logout_on_a_ends_the_sessions_stream_on_b(recheck_pair):
    a, b = recheck_pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    stream = _live_stream_on(b, bearer(b, user.token), dev)
    try:
        expect(bearer(a, user.token).post("/auth/logout"), 200)
        assert revoked_reason(stream) == "session_ended"
    finally:
        stream.close()


def test_key_rotated_on_a_ends_the_keys_stream_on_b():
    """Re-checks only every hour: the device notice must end the stream on
    B at once."""
    servers = start_pair({"IOTFLOW_STREAM_RECHECK": "3600"})
    try:
        _key_rotation_across(*servers)
    finally:
        stop_pair(servers)


def _key_rotation_across(a, b):
    user = make_user(a, "bearer")
    dev = register_device(user)
    stream = _live_stream_on(b, key_client(b, dev["api_key"]), dev)
    try:
        expect(bearer(a, user.token).post(f"/devices/{dev['id']}/rotate-key"), 200)
        assert revoked_reason(stream, timeout=10) == "key_revoked"
    finally:
        stream.close()


def test_deactivation_on_a_ends_streams_on_b(recheck_pair):
    a, b = recheck_pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    stream = _live_stream_on(b, bearer(b, user.token), dev)
    try:
        expect(a.admin.patch(f"/users/{user.user_id}/deactivate"), 200)
        assert revoked_reason(stream) == "user_inactive"
    finally:
        stream.close()
