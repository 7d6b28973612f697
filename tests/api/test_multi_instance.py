"""Two iotflowd instances on one PostgreSQL and one Redis, as behind a load
balancer: whatever a client does on instance A holds on instance B.

Runs in the PostgreSQL + Redis pass of `make test` (scripts/services.sh
started the servers); the embedded stores are one process's own, so the
embedded pass skips this file.
"""
import time

import pytest

from conftest import (SERVER_BACKENDS, TEST_CASSANDRA, Server, error_text, expect, expect_error,
                      fresh_backends, key_client, login_token, make_user, register_device,
                      unique)
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
    # Key-cache entries live an hour: what B forgets, it forgets by A's
    # notice, not by expiry (the TTL bound is tested with an injected clock
    # in tests/unit/core/devcache_test.c). So no test here measures a time
    # window, which a loaded machine would stretch.
    servers = start_pair({"IOTFLOW_KEY_CACHE_TTL_MS": "3600000"})
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


def wait_stream_live(stream, device_client, seconds=10):
    """Returns once a message posted now reaches the stream: B's
    subscription is then live on Redis. Posts {"marker": 1} messages until
    one arrives (their events come before anything posted later)."""
    deadline = time.monotonic() + seconds
    while True:
        expect(device_client.post("/telemetry", json={"data": {"marker": 1}}), 201)
        try:
            for e in stream.events(1, timeout=0.3):
                if "marker" in e["measurements"]:
                    return
        except AssertionError:
            pass  # nothing yet
        assert time.monotonic() < deadline, f"stream not live within {seconds} s"


def events_after_markers(stream, n):
    """The next n telemetry events that are not wait_stream_live's markers."""
    out = []
    while len(out) < n:
        out += [e for e in stream.events(1) if "marker" not in e["measurements"]]
    return out


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


def test_key_rotated_on_a_is_refused_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    old_on_b = key_client(b, dev["api_key"])
    expect(old_on_b.post("/telemetry/batch", json=[{"data": {"x": 1}}]), 201)  # warm B's key cache
    rotated = expect(bearer(a, user.token).post(f"/devices/{dev['id']}/rotate-key"), 200)
    # B's cached entry would live an hour: only A's notice can end it.
    until(lambda: old_on_b.post("/telemetry", json={"data": {"x": 2}}).status_code == 401,
          10, "old key refused on B")
    expect(key_client(b, rotated["api_key"]).post("/telemetry", json={"data": {"x": 3}}), 201)


def test_deleting_a_device_on_a_refuses_its_key_on_b(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    on_b = key_client(b, dev["api_key"])
    expect(on_b.post("/telemetry", json={"data": {"x": 1}}), 201)
    expect(a.admin.delete(f"/admin/devices/{dev['id']}"), 200)
    until(lambda: on_b.post("/telemetry", json={"data": {"x": 2}}).status_code == 401,
          10, "deleted device's key refused on B")


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
        wait_stream_live(stream, key_client(a, dev["api_key"]))
        expect(key_client(a, dev["api_key"]).post("/telemetry", json={"data": {"t": 1}}), 201)
        expect(key_client(a, dev["api_key"]).post(
            "/telemetry/batch", json=[{"data": {"t": 2}}, {"data": {"t": 3}}]), 201)
        events = events_after_markers(stream, 3)
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
        wait_stream_live(stream, key_client(a, dev["api_key"]))
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
def long_cache_pair():
    """A pair whose key caches keep entries for ten minutes: what B forgets
    within a second it forgets because A told it (device:notice), not
    because the entry expired."""
    servers = start_pair({"IOTFLOW_KEY_CACHE_TTL_MS": "600000"})
    yield servers
    stop_pair(servers)


@pytest.fixture(scope="module")
def recheck_pair():
    """A pair re-checking live streams' credentials every second."""
    servers = start_pair({"IOTFLOW_STREAM_RECHECK": "1"})
    yield servers
    stop_pair(servers)


def test_owner_deactivated_on_a_refuses_devices_on_b(long_cache_pair):
    a, b = long_cache_pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    on_b = key_client(b, dev["api_key"])
    post = lambda: on_b.post("/telemetry", json={"data": {"x": 1}}).status_code
    assert post() == 201  # B caches the key, with the owner active
    expect(a.admin.patch(f"/users/{user.user_id}/deactivate"), 200)
    until(lambda: post() == 403, 1.0, "deactivated owner's device refused on B")
    expect(a.admin.patch(f"/users/{user.user_id}/activate"), 200)
    until(lambda: post() == 201, 1.0, "re-activated owner's device accepted on B")


def test_device_switched_off_on_a_is_refused_on_b(long_cache_pair):
    a, b = long_cache_pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    on_b = key_client(b, dev["api_key"])
    post = lambda: on_b.post("/telemetry", json={"data": {"x": 1}}).status_code
    assert post() == 201
    expect(a.admin.put(f"/admin/devices/{dev['id']}/status", json={"status": "inactive"}), 200)
    until(lambda: post() == 403, 1.0, "device switched off by an admin refused on B")
    expect(a.admin.put(f"/admin/devices/{dev['id']}/status", json={"status": "active"}), 200)
    until(lambda: post() == 201, 1.0, "device switched on again accepted on B")


@pytest.fixture(scope="module")
def deaf_pair():
    """A and B on one PostgreSQL but each with a Redis prefix of its own: B
    never hears A's device notices (as when Redis is down or a notice is
    lost), and its key-cache entries live an hour. What B's cache holds
    about a device stays stale; only the registry knows better."""
    shared = fresh_backends()
    deaf = {**shared, "REDIS_URL": fresh_backends()["REDIS_URL"]}
    env = {"IOTFLOW_KEY_CACHE_TTL_MS": "3600000"}
    servers = Server(backends=shared, env=env).start(), Server(backends=deaf, env=env).start()
    yield servers
    stop_pair(servers)


def assert_refused_as_switched_off(r, dev):
    err = expect_error(r, 403)
    assert "admin" in error_text(err) and f"/admin/devices/{dev['id']}/status" in err["message"], err


def test_stale_copy_on_b_cannot_undo_switch_off_through_config(deaf_pair):
    """B cached the device as active (set by itself); an admin on A puts it
    in maintenance; the device's PUT /devices/config on B, from B's stale
    copy, must not write "active" back (nor its other fields)."""
    a, b = deaf_pair
    dev = register_device(make_user(a, "bearer"))
    on_b = key_client(b, dev["api_key"])
    for x in (1, 2):  # first use activates; the second request caches the active row
        expect(on_b.post("/telemetry", json={"data": {"x": x}}), 201)
    expect(a.admin.put(f"/admin/devices/{dev['id']}/status", json={"status": "maintenance"}), 200)
    assert_refused_as_switched_off(
        on_b.put("/devices/config", json={"status": "active", "firmware_version": "9.9"}), dev)
    d = expect(a.admin.get(f"/admin/devices/{dev['id']}"), 200)["device"]
    assert (d["status"], d["status_set_by"]) == ("maintenance", "admin"), d
    assert d["firmware_version"] != "9.9", d
    # the refusal dropped B's stale copy: B now refuses the key too
    assert_refused_as_switched_off(on_b.post("/telemetry", json={"data": {"x": 3}}), dev)


def test_stale_copy_on_b_cannot_undo_switch_off_through_first_use(deaf_pair):
    """B cached the device as new and inactive; an admin on A switches it
    off; its first telemetry on B must not activate it."""
    a, b = deaf_pair
    dev = register_device(make_user(a, "bearer"))
    on_b = key_client(b, dev["api_key"])
    expect(on_b.get("/devices/credentials"), 200)  # caches it on B, no activation
    expect(a.admin.put(f"/admin/devices/{dev['id']}/status", json={"status": "inactive"}), 200)
    assert_refused_as_switched_off(on_b.post("/telemetry", json={"data": {"x": 1}}), dev)
    d = expect(a.admin.get(f"/admin/devices/{dev['id']}"), 200)["device"]
    assert (d["status"], d["status_set_by"]) == ("inactive", "admin"), d
    # switched on by the admin, the device works on B again
    expect(a.admin.put(f"/admin/devices/{dev['id']}/status", json={"status": "active"}), 200)
    expect(on_b.post("/telemetry", json={"data": {"x": 2}}), 201)


def test_stale_copy_on_b_writes_back_only_what_the_device_sent(deaf_pair):
    """The device moved on A; its config on B, sending firmware only, must
    not write B's stale location back."""
    a, b = deaf_pair
    dev = register_device(make_user(a, "bearer"))
    on_a, on_b = key_client(a, dev["api_key"]), key_client(b, dev["api_key"])
    for x in (1, 2):  # first use activates; the second request caches the active row on B
        expect(on_b.post("/telemetry", json={"data": {"x": x}}), 201)
    expect(on_a.put("/devices/config", json={"status": "active", "location": "Cellar"}), 200)
    d = expect(on_b.put("/devices/config", json={"status": "active", "firmware_version": "4.0"}),
               200)["device"]
    assert (d["location"], d["firmware_version"]) == ("Cellar", "4.0"), d
    d = expect(a.admin.get(f"/admin/devices/{dev['id']}"), 200)["device"]
    assert (d["location"], d["firmware_version"]) == ("Cellar", "4.0"), d


def test_admin_token_throttle_is_shared():
    """Failed admin tokens count on both instances together (4 a minute
    here): guessing cannot be spread over instances behind a balancer."""
    a, b = start_pair({"IOTFLOW_ADMIN_FAIL_LIMIT": "4"})
    try:
        for _attempt in range(2):  # again only if a minute boundary split the first go
            start = time.time()
            codes = [s.api.get("/admin/stats", headers={"Authorization": "admin wrong"}).status_code
                     for s in (a, b, a, b, a)]
            right_on_b = b.admin.get("/admin/stats").status_code
            if int(start // 60) == int(time.time() // 60):
                break
        assert codes == [403, 403, 403, 403, 429], codes
        assert right_on_b == 429
    finally:
        stop_pair((a, b))


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


# --------------------------------------------------------------------------
# Telemetry shared through Cassandra (the third pass of make test)
# --------------------------------------------------------------------------

def _telemetry_views(client, dev_id, user_client, user_id, t0, t1):
    """Everything a client can read about a device's telemetry, minus what
    says where an answer came from (cache or store)."""
    from test_telemetry import read_all
    span = {"start_time": iso_of(t0 - HOUR_MS), "end_time": iso_of(t1 + HOUR_MS)}
    views = {
        "history": read_all(client, f"/telemetry/{dev_id}", limit=4, **span),
        "latest": expect(client.get(f"/telemetry/{dev_id}/latest"), 200)["measurements"],
        "catalog": expect(client.get(f"/telemetry/{dev_id}/measurements"), 200),
    }
    for agg in ("sum", "count", "min", "max", "first", "last", "mean"):
        body = expect(client.get(f"/telemetry/{dev_id}/aggregated",
                                 params={"field": "temp", "aggregation": agg, "window": "1h",
                                         **span}), 200)
        views[f"aggregated_{agg}"] = body["data"]
    views["user_history"] = read_all(user_client, f"/telemetry/user/{user_id}",
                                      list_key="telemetry", limit=5, **span)
    return views


HOUR_MS = 3_600_000


def iso_of(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


@pytest.mark.skipif(not TEST_CASSANDRA, reason="needs the Cassandra pass (telemetry shared)")
def test_telemetry_written_on_a_reads_the_same_on_b(pair):
    """Single messages and batches sent to A, across a day boundary: B's
    history (cursor paging over both days), per-user history, latest,
    catalog and aggregations equal A's."""
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    on_a, on_b = key_client(a, dev["api_key"]), key_client(b, dev["api_key"])
    midnight = int(time.time() * 1000) // (24 * HOUR_MS) * (24 * HOUR_MS)
    t0 = midnight - 50 * 60_000
    batch = [{"data": {"temp": 20 + i, "on": i % 2 == 0}, "timestamp": iso_of(t0 + i * 10 * 60_000)}
             for i in range(10)]                       # 23:10 .. 00:40, two days
    expect(on_a.post("/telemetry/batch", json={"messages": batch}), 201)
    for i in range(3):
        expect(on_a.post("/telemetry", json={"data": {"temp": 40 + i, "label": f"s{i}"},
                                              "metadata": {"temp_unit": "C"}}), 201)
    t1 = int(time.time() * 1000)
    seen_a = _telemetry_views(on_a, dev["id"], bearer(a, user.token), user.user_id, t0, t1)
    seen_b = _telemetry_views(on_b, dev["id"], bearer(b, user.token), user.user_id, t0, t1)
    assert len(seen_a["history"]) == 13, seen_a["history"]
    for view in seen_a:
        assert seen_b[view] == seen_a[view], f"{view} differs:\nA {seen_a[view]}\nB {seen_b[view]}"


@pytest.mark.skipif(not TEST_CASSANDRA, reason="needs the Cassandra pass (telemetry shared)")
def test_live_stream_on_b_of_telemetry_sent_to_a(pair):
    a, b = pair
    user = make_user(a, "bearer")
    dev = register_device(user)
    on_a, on_b = key_client(a, dev["api_key"]), key_client(b, dev["api_key"])
    stream = Stream(on_b, dev["id"])
    try:
        assert stream.ok
        wait_stream_live(stream, on_a)
        expect(on_a.post("/telemetry", json={"data": {"temp": 77}}), 201)
        (event,) = events_after_markers(stream, 1)
        assert event["measurements"] == {"temp": 77}, event
        history = expect(on_b.get(f"/telemetry/{dev['id']}", params={"limit": 1}), 200)
        assert history["data"][0]["measurements"] == {"temp": 77}, history
    finally:
        stream.close()


@pytest.mark.skipif(not TEST_CASSANDRA, reason="needs the Cassandra pass (telemetry shared)")
def test_instances_starting_at_once_make_one_schema():
    """Three instances start together on a keyspace that does not exist
    yet: each makes the keyspace and tables (IF NOT EXISTS), all come up,
    and what one stores the others read."""
    import threading
    shared = fresh_backends()
    servers, errors = [None] * 3, []

    def start(i):
        try:
            servers[i] = Server(backends=shared).start()
        except Exception as e:  # noqa: BLE001 — reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        user = make_user(servers[0], "bearer")
        dev = register_device(user)
        expect(key_client(servers[1], dev["api_key"]).post("/telemetry", json={"data": {"v": 5}}),
               201)
        body = expect(key_client(servers[2], dev["api_key"]).get(f"/telemetry/{dev['id']}"), 200)
        assert [r["measurements"] for r in body["data"]] == [{"v": 5}], body
    finally:
        for s in servers:
            if s:
                s.stop_and_check()
                s.cleanup()
