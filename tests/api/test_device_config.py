"""Device configurations (documents store): GET/PUT /devices/{id}/config,
the history, the device's own GET /devices/config with its ETag, and
PUT /groups/{id}/config for every device of a group."""
import concurrent.futures
import time

import pytest

from docs_store import count_docs, docs_embedded
from conftest import (create_group, expect, expect_error, key_client, register_device,
                      unique)


def config_of(user, device):
    return expect(user.api.get(f"/devices/{device['id']}/config"), 200)


def put_config(user, device, config):
    return expect(user.api.put(f"/devices/{device['id']}/config", json=config), 200)


@pytest.fixture
def device(user):
    return register_device(user)


# ---------------------------------------------------------------- owner

def test_none_yet_is_version_zero(user, device):
    body = config_of(user, device)
    assert body == {"device_id": device["id"], "version": 0, "config": {}, "updated_at": None,
                    "updated_by": None}


def test_put_makes_versions(user, device):
    first = put_config(user, device, {"interval": 30, "mode": "eco"})
    assert first["version"] == 1 and first["config"] == {"interval": 30, "mode": "eco"}
    assert first["updated_by"] == user.user_id and first["updated_at"].endswith("Z")
    second = put_config(user, device, {"interval": 60, "nested": {"a": [1, 2.5, "x"]}})
    assert second["version"] == 2
    assert config_of(user, device) == second


def test_text_round_trips(user, device):
    config = {"name": "caf\u00e9 \"quoted\" '; DROP TABLE x; --", "emoji": "\U0001F600",
              "real": 0.1, "big": 12345678901234, "neg": -1.5e-7, "empty": {}, "list": []}
    put_config(user, device, config)
    assert config_of(user, device)["config"] == config


def test_other_user_and_unknown_device(user, other_user, device):
    expect_error(other_user.api.get(f"/devices/{device['id']}/config"), 403)
    expect_error(other_user.api.put(f"/devices/{device['id']}/config", json={"a": 1}), 403)
    expect_error(other_user.api.get(f"/devices/{device['id']}/config/history"), 403)
    expect_error(user.api.get("/devices/999999999/config"), 404)
    expect_error(user.api.put("/devices/abc/config", json={}), 404)
    expect_error(user.server.api.get(f"/devices/{device['id']}/config"), 401)


def test_admin_reads_and_writes(user, device, srv):
    body = expect(srv.admin.put(f"/devices/{device['id']}/config", json={"by": "admin"}), 200)
    assert body["updated_by"] == "admin" and body["version"] == 1
    assert expect(srv.admin.get(f"/devices/{device['id']}/config"), 200) == body
    assert config_of(user, device) == body


def test_admin_user_writes(admin_user, bearer_users):
    owner = bearer_users.new()
    dev = register_device(owner)
    body = put_config(admin_user, dev, {"x": 1})
    assert body["updated_by"] == admin_user.user_id


def test_device_key_cannot_use_owner_routes(user, device):
    dev = key_client(user.server, device["api_key"])
    expect_error(dev.get(f"/devices/{device['id']}/config"), 401)
    expect_error(dev.put(f"/devices/{device['id']}/config", json={}), 401)


@pytest.mark.parametrize("body", ["[]", "3", "\"x\"", "{", "null", ""])
def test_put_refuses_what_is_not_an_object(user, device, body):
    expect_error(user.api.put(f"/devices/{device['id']}/config", data=body), 400)


def test_put_size_limit(user, device):
    # 64 KiB of compact JSON is the limit: {"k":"..."} is 8 bytes of framing
    fits = {"k": "x" * (64 * 1024 - 8)}
    assert put_config(user, device, fits)["version"] == 1
    r = user.api.put(f"/devices/{device['id']}/config", json={"k": "x" * (64 * 1024)})
    expect_error(r, 413)
    assert config_of(user, device)["version"] == 1, "nothing was stored"


def test_put_wrong_media_type(user, device):
    r = user.api.put(f"/devices/{device['id']}/config", data="{}",
                     headers={"Content-Type": "text/plain"})
    expect_error(r, 415)


def test_concurrent_puts_never_share_a_version(user, device):
    def one(i):
        r = user.api.put(f"/devices/{device['id']}/config", json={"i": i})
        return expect(r, 200)["version"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(one, range(24)))
    assert sorted(versions) == list(range(1, 25))
    assert config_of(user, device)["version"] == 24


# ---------------------------------------------------------------- history

def test_history_pages_newest_first(user, device):
    for i in range(7):
        put_config(user, device, {"i": i})
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = expect(user.api.get(f"/devices/{device['id']}/config/history", params=params), 200)
        assert page["device_id"] == device["id"] and page["count"] == len(page["history"])
        assert len(page["history"]) <= 3
        seen += page["history"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [h["version"] for h in seen] == [7, 6, 5, 4, 3, 2, 1]
    assert [h["config"] for h in seen] == [{"i": i} for i in range(6, -1, -1)]
    for h in seen:
        assert set(h) == {"device_id", "version", "config", "updated_at", "updated_by"}


def test_history_empty_and_default_limit(user, device):
    page = expect(user.api.get(f"/devices/{device['id']}/config/history"), 200)
    assert page == {"device_id": device["id"], "history": [], "count": 0, "next_cursor": None}


@pytest.mark.parametrize("params", [{"cursor": "nope"}, {"cursor": "5"}, {"cursor": "x.v5"},
                                    {"cursor": "5.a b"}, {"cursor": "+5.v5"}, {"limit": -1},
                                    {"limit": "ten"}])
def test_history_bad_paging(user, device, params):
    expect_error(user.api.get(f"/devices/{device['id']}/config/history", params=params), 400)


def test_history_cursor_before_the_first_version(user, device):
    put_config(user, device, {"a": 1})
    for cursor in ("1.v1", "0.v0", "-7.x"):
        page = expect(user.api.get(f"/devices/{device['id']}/config/history",
                                   params={"cursor": cursor}), 200)
        assert page["history"] == [] and page["next_cursor"] is None


# ---------------------------------------------------------------- the device itself

def test_device_reads_its_own_with_etag(user, device):
    dev = key_client(user.server, device["api_key"])
    r = dev.get("/devices/config")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 0 and r.headers["ETag"] == '"v0"'
    put_config(user, device, {"rate": 5})
    r = dev.get("/devices/config")
    assert r.status_code == 200 and r.json()["config"] == {"rate": 5}
    etag = r.headers["ETag"]
    assert etag == '"v1"'
    r = dev.get("/devices/config", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["ETag"] == etag
    for header in ('W/"v1"', '"v0", "v1"', "*"):
        assert dev.get("/devices/config", headers={"If-None-Match": header}).status_code == 304
    assert dev.get("/devices/config", headers={"If-None-Match": '"v0"'}).status_code == 200
    put_config(user, device, {"rate": 6})
    r = dev.get("/devices/config", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["ETag"] == '"v2"'


def test_device_reads_only_its_own(user, device):
    other = register_device(user)
    put_config(user, other, {"mine": False})
    r = expect(key_client(user.server, device["api_key"]).get("/devices/config"), 200)
    assert r["device_id"] == device["id"] and r["version"] == 0


def test_device_config_needs_a_key(user):
    expect_error(user.server.api.get("/devices/config", headers={"X-API-Key": "x" * 32}), 401)
    expect_error(user.server.api.get("/devices/config"), 401)


def test_put_devices_config_keeps_its_meaning(user, device):
    """The device's own PUT /devices/config still sets status and the like."""
    dev = key_client(user.server, device["api_key"])
    r = expect(dev.put("/devices/config", json={"status": "maintenance"}), 200)
    assert r["device"]["status"] == "maintenance"
    assert expect(dev.get("/devices/config"), 200)["version"] == 0


# ---------------------------------------------------------------- groups

def test_group_config_reaches_every_device(user):
    group = create_group(user)
    devs = [register_device(user) for _ in range(3)]
    for d in devs:
        expect(user.api.post(f"/groups/{group['id']}/devices", json={"device_id": d["id"]}), 201)
    put_config(user, devs[0], {"before": True})
    body = expect(user.api.put(f"/groups/{group['id']}/config", json={"fleet": 1}), 200)
    assert body["updated"] == 3 and body["group_id"] == group["id"]
    assert sorted(x["device_id"] for x in body["devices"]) == sorted(d["id"] for d in devs)
    versions = {x["device_id"]: x["version"] for x in body["devices"]}
    assert versions[devs[0]["id"]] == 2 and versions[devs[1]["id"]] == 1
    for d in devs:
        assert config_of(user, d)["config"] == {"fleet": 1}


def test_group_config_access(user, other_user, srv):
    group = create_group(user)
    expect_error(other_user.api.put(f"/groups/{group['id']}/config", json={}), 403)
    expect_error(user.api.put("/groups/999999999/config", json={}), 404)
    body = expect(srv.admin.put(f"/groups/{group['id']}/config", json={"a": 1}), 200)
    assert body == {"group_id": group["id"], "updated": 0, "devices": []}
    expect_error(user.api.put(f"/groups/{group['id']}/config", data="[1]"), 400)
    r = user.api.put(f"/groups/{group['id']}/config", json={"k": "x" * (64 * 1024)})
    expect_error(r, 413)


# ---------------------------------------------------------------- clean-up

def test_deleting_device_removes_its_configs(user, srv):
    doomed, kept = register_device(user), register_device(user)
    put_config(user, doomed, {"a": 1})
    put_config(user, kept, {"b": 2})
    expect(user.api.delete(f"/admin/devices/{doomed['id']}", headers=srv.admin_headers), 200)
    # a new device never inherits anything; the kept one is untouched
    assert config_of(user, kept)["config"] == {"b": 2}
    if docs_embedded(srv):
        assert count_docs(srv, "configs", device_id=doomed["id"]) == 0
        assert count_docs(srv, "configs", device_id=kept["id"]) == 1


def test_changes_are_recorded_as_events(user, device, srv):
    """Each version appends a device.config_changed event (written off the
    request path: polled), under the owner, whoever wrote it."""
    put_config(user, device, {"a": 1})
    expect(srv.admin.put(f"/devices/{device['id']}/config", json={"a": 2}), 200)
    deadline = time.monotonic() + 5
    while True:
        got = expect(user.api.get("/events", params={"type": "device.config_changed",
                                                     "device_id": device["id"]}), 200)["events"]
        if len(got) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted((e["details"]["version"], e["details"]["updated_by"]) for e in got) == \
        [(1, user.user_id), (2, "admin")], got  # one millisecond's events: no set order
