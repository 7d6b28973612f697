"""/devices: registration, device-key endpoints, per-user listing, per-id
status and group membership."""
import pytest

from conftest import (API_KEY_RE, assert_device_dict, assert_no_secrets, assert_ts,
                      create_group, describe, expect, expect_error, expect_rejects, key_client,
                      register_device, unique)

FULL = {"description": "roof sensor", "device_type": "thermometer",
        "location": "Roof", "firmware_version": "1.2.3", "hardware_version": "rev-B"}


def set_status(device, status):
    """Put a device into `status` through its own key (PUT /devices/config)."""
    expect(device["_client"].put("/devices/config", json={"status": status}), 200)


@pytest.fixture
def owner(shared_user):
    """The long-lived per-mode user: for tests that need a device owner but
    do not count that owner's devices."""
    return shared_user


@pytest.fixture
def device(owner):
    d = register_device(owner)
    d["_client"] = key_client(owner.server, d["api_key"])
    return d


# ---------------------------------------------------------------- register

def test_register_minimal(owner):
    name = unique("dev")
    r = owner.api.post("/devices/register", json={"name": name, "device_type": "sensor"})
    data = expect(r, 201)
    assert data["message"] == "Device registered successfully"
    d = data["device"]
    assert_device_dict(d, name=name, device_type="sensor", status="inactive",
                       status_set_by="new", user_id=owner.id, last_seen=None)
    assert API_KEY_RE.match(d["api_key"]), d["api_key"]
    assert d["owner"] == {"username": owner.username, "email": owner.email}


def test_register_all_fields(owner):
    d = register_device(owner, **FULL)
    assert_device_dict(d, **FULL)


def test_register_ignores_server_owned_fields(owner, other_user):
    """Mass assignment: id, status, api_key, user_id, last_seen are the server's."""
    r = owner.api.post("/devices/register", json={
        "name": unique("mass"), "device_type": "sensor", "id": 1, "status": "active",
        "api_key": "A" * 32, "status_set_by": "admin",
        "user_id": other_user.id, "last_seen": "2020-01-01T00:00:00.000Z"})
    if r.status_code == 400:
        expect_error(r, 400)
        return
    d = expect(r, 201)["device"]
    assert (d["status"], d["status_set_by"], d["user_id"], d["last_seen"]) == \
        ("inactive", "new", owner.id, None), d
    assert d["api_key"] != "A" * 32
    expect_error(key_client(owner.server, "A" * 32).get("/devices/status"), 401)


def test_api_keys_are_unique(owner):
    keys = {register_device(owner)["api_key"] for _ in range(3)}
    assert len(keys) == 3


REGISTER_INVALID = {
    "empty": {}, "name-empty": {"name": ""}, "name-null": {"name": None},
    "type-empty": {"device_type": ""}, "type-null": {"device_type": None},
    "name-int": {"name": 42}, "name-list": {"name": ["x"]}, "name-101": {"name": "n" * 101},
    "type-int": {"device_type": 7}, "description-int": {"description": 5},
    "location-list": {"location": []}, "firmware-21": {"firmware_version": "1" * 21},
    "hardware-21": {"hardware_version": "h" * 21}, "firmware-float": {"firmware_version": 1.0},
    "hardware-obj": {"hardware_version": {"v": 1}},
    "not-json": "{", "array": "[]", "number": "12", "null": "null",
}


def test_register_invalid(shared_user):
    def send(body):
        if isinstance(body, str):
            return shared_user.api.post("/devices/register", data=body)
        if body and "name" not in body:
            body = {"name": unique("dev"), **body}
        if body and "device_type" not in body:
            body = {"device_type": "sensor", **body}
        return shared_user.api.post("/devices/register", json=body)
    expect_rejects(send, REGISTER_INVALID, 400)


def test_register_boundary_lengths(owner):
    name = unique("d").ljust(100, "n")
    d = register_device(owner, name=name, firmware_version="f" * 20, hardware_version="h" * 20)
    assert (d["name"], d["firmware_version"], d["hardware_version"]) == \
        (name, "f" * 20, "h" * 20)


def test_register_requires_name_and_device_type(shared_user):
    """Both are required, as in the original (POST /devices/register)."""
    cases = {"no-type": {"name": unique("d")}, "no-name": {"device_type": "sensor"},
             "only-description": {"description": "x"}}
    for label, body in cases.items():
        err = expect_error(shared_user.api.post("/devices/register", json=body), 400)
        assert "device_type" in err["message"] and "name" in err["message"], (label, err)


def test_register_needs_user(srv):
    expect_error(srv.api.post("/devices/register", json={"name": "x"}), 401)


def test_register_duplicate_name_same_user(owner):
    name = unique("dup")
    register_device(owner, name=name)
    expect_error(owner.api.post("/devices/register",
                                json={"name": name, "device_type": "sensor"}), 409)


def test_register_same_name_other_user(user, other_user):
    name = unique("shared")
    a, b = register_device(user, name=name), register_device(other_user, name=name)
    assert a["id"] != b["id"] and b["user_id"] == other_user.id


# ---------------------------------------------------------------- device key auth

KEY_ENDPOINTS = [("GET", "/devices/status", None),
                 ("POST", "/devices/heartbeat", None),
                 ("PUT", "/devices/config", {"status": "active", "location": "x"}),
                 ("GET", "/devices/credentials", None)]


@pytest.mark.parametrize("method,path,body", KEY_ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, _ in KEY_ENDPOINTS])
def test_device_endpoints_need_valid_key(server, method, path, body):
    kw = {"json": body} if body is not None else {}
    keys = {"missing": None, "empty": "", "unknown": "A" * 32, "short": "short",
            "long": "A" * 4000}
    expect_rejects(lambda key: server.api.request(
        method, path, headers={} if key is None else {"X-API-Key": key}, **kw), keys, 401)


def test_user_credentials_are_not_device_credentials(owner):
    expect_error(owner.api.get("/devices/status"), 401)


# ---------------------------------------------------------------- status / heartbeat

def test_status_by_key_activates(device, owner):
    r = device["_client"].get("/devices/status")
    data = expect(r, 200)
    assert data["status"] == "success"
    assert_device_dict(data["device"], id=device["id"], name=device["name"],
                       status="active", user_id=owner.id)
    assert isinstance(data["device"]["is_online"], bool)
    assert_no_secrets(r, device["api_key"])


def test_heartbeat(device, owner):
    r = device["_client"].post("/devices/heartbeat")
    data = expect(r, 200)
    assert data["message"] == "Heartbeat received"
    assert data["device_id"] == device["id"] and data["status"] == "online"
    assert_ts(data["timestamp"], what="heartbeat timestamp")
    st = expect(owner.api.get(f"/devices/{device['id']}/status"), 200)["device"]
    assert st["is_online"] is True
    assert_ts(st["last_seen"], what="last_seen")
    assert st["status"] == "active"


def test_new_device_is_offline(device, owner):
    st = expect(owner.api.get(f"/devices/{device['id']}/status"), 200)["device"]
    assert st["is_online"] is False and st["last_seen"] is None
    assert st["status"] == "inactive"


def test_maintenance_device_is_refused(device):
    """A device in maintenance is refused (403) on status and heartbeat."""
    set_status(device, "maintenance")
    cases = {"status": ("GET", "/devices/status"), "heartbeat": ("POST", "/devices/heartbeat")}
    expect_rejects(lambda c: device["_client"].request(*c), cases, 403)


def test_credentials(device, owner):
    r = device["_client"].get("/devices/credentials")
    d = expect(r, 200)["device"]
    assert expect(r, 200)["status"] == "success"
    assert (d["id"], d["name"], d["api_key"]) == (device["id"], device["name"], device["api_key"])
    assert d["device_type"] == "sensor" and d["status"] in ("active", "inactive")
    assert d["owner"] == {"username": owner.username, "user_id": owner.user_id}


def test_credentials_in_maintenance(device):
    set_status(device, "maintenance")
    assert expect(device["_client"].get("/devices/credentials"), 200)["device"]["status"] \
        == "maintenance"


# ---------------------------------------------------------------- config

def test_config_update(device):
    body = {"status": "active", "location": "Cellar", "firmware_version": "2.0.0",
            "hardware_version": "rev-C"}
    r = device["_client"].put("/devices/config", json=body)
    data = expect(r, 200)
    assert data["message"]
    assert_device_dict(data["device"], id=device["id"], **body)
    assert_no_secrets(r, device["api_key"])
    again = expect(device["_client"].get("/devices/status"), 200)["device"]
    assert {k: again[k] for k in body} == body


def test_config_ignores_server_owned_fields(device, owner):
    r = device["_client"].put("/devices/config", json={
        "status": "active", "location": "Attic", "user_id": owner.id + 1000, "api_key": "B" * 32, "id": 1,
        "name": "renamed"})
    if r.status_code == 400:
        expect_error(r, 400)
    else:
        d = expect(r, 200)["device"]
        assert (d["id"], d["user_id"], d["name"]) == (device["id"], owner.id, device["name"]), d
    again = expect(device["_client"].get("/devices/credentials"), 200)["device"]
    assert again["owner"]["user_id"] == owner.user_id and again["name"] == device["name"]


def test_header_names_are_case_insensitive(device, owner):
    for name in ("x-api-key", "X-API-KEY"):
        r = owner.server.api.get("/devices/status", headers={name: device["api_key"]})
        assert expect(r, 200)["device"]["id"] == device["id"]


def test_config_status_values(device):
    for status in ("active", "inactive", "active", "maintenance"):
        r = device["_client"].put("/devices/config", json={"status": status})
        assert expect(r, 200)["device"]["status"] == status, describe(r)


def test_config_invalid(device):
    cases = {"empty": {}, "unknown-field": {"unknown_field": 1}, "bad-status": {"status": "broken"},
             "no-status": {"location": "Cellar"}, "status-null": {"status": None, "location": "x"},
             "status-empty": {"status": ""},
             "status-int": {"status": 1}, "location-int": {"location": 5},
             "firmware-too-long": {"firmware_version": "9" * 21},
             "name-not-allowed": {"name": "renamed-by-device"}, "array": [1, 2], "number": 3}
    expect_rejects(lambda body: device["_client"].put("/devices/config", json=body), cases, 400)
    assert expect(device["_client"].get("/devices/credentials"), 200)["device"]["name"] \
        == device["name"]


# ---------------------------------------------------------------- /devices/user/{user_id}

def test_list_user_devices(user):
    devs = [register_device(user) for _ in range(3)]
    r = user.api.get(f"/devices/user/{user.user_id}")
    data = expect(r, 200)
    assert (data["status"], data["user_id"], data["username"]) == \
        ("success", user.user_id, user.username)
    assert data["total_devices"] == 3
    assert sorted(d["id"] for d in data["devices"]) == sorted(d["id"] for d in devs)
    assert data["meta"] == {"limit": 100, "offset": 0, "returned": 3}
    for d in data["devices"]:
        assert_device_dict(d, user_id=user.id)
    assert_no_secrets(r, *[d["api_key"] for d in devs])


def test_list_user_devices_empty(user):
    data = expect(user.api.get(f"/devices/user/{user.user_id}"), 200)
    assert data["total_devices"] == 0 and data["devices"] == []


def test_list_user_devices_status_filter(user):
    devs = [register_device(user) for _ in range(3)]
    expect(key_client(user.server, devs[0]["api_key"]).get("/devices/status"), 200)
    data = expect(user.api.get(f"/devices/user/{user.user_id}",
                               params={"status": "active"}), 200)
    assert [d["id"] for d in data["devices"]] == [devs[0]["id"]]
    assert data["total_devices"] == 1
    data = expect(user.api.get(f"/devices/user/{user.user_id}",
                               params={"status": "inactive"}), 200)
    assert data["total_devices"] == 2


def test_list_user_devices_paging(user):
    ids = {register_device(user)["id"] for _ in range(3)}
    p1 = expect(user.api.get(f"/devices/user/{user.user_id}", params={"limit": 2}), 200)
    p2 = expect(user.api.get(f"/devices/user/{user.user_id}",
                             params={"limit": 2, "offset": 2}), 200)
    assert p1["meta"] == {"limit": 2, "offset": 0, "returned": 2}
    assert p2["meta"] == {"limit": 2, "offset": 2, "returned": 1}
    assert p1["total_devices"] == p2["total_devices"] == 3
    assert {d["id"] for d in p1["devices"] + p2["devices"]} == ids


def test_list_user_devices_limit_clamped(owner):
    data = expect(owner.api.get(f"/devices/user/{owner.user_id}", params={"limit": 99999}), 200)
    assert data["meta"]["limit"] == 1000


def test_list_user_devices_bad_paging(shared_user):
    cases = {"neg-limit": {"limit": -1}, "neg-offset": {"offset": -1},
             "alpha-limit": {"limit": "ten"}, "alpha-offset": {"offset": "zero"},
             "empty-limit": {"limit": ""}}
    expect_rejects(lambda params: shared_user.api.get(
        f"/devices/user/{shared_user.user_id}", params=params), cases, 400)


def test_list_other_users_devices_forbidden(user, other_user):
    expect_error(user.api.get(f"/devices/user/{other_user.user_id}"), 403)


def test_list_user_devices_needs_credentials(srv, owner):
    expect_error(srv.api.get(f"/devices/user/{owner.user_id}"), 401)


def test_list_user_devices_as_admin(srv, user):
    register_device(user)
    assert expect(srv.admin.get(f"/devices/user/{user.user_id}"), 200)["total_devices"] == 1
    expect_error(srv.admin.get(f"/devices/user/{'e' * 32}"), 404)


# ---------------------------------------------------------------- /devices/{id}/status

def test_device_status_by_id(device, owner):
    r = owner.api.get(f"/devices/{device['id']}/status")
    data = expect(r, 200)
    d = data["device"]
    assert data["status"] == "success"
    for k in ("id", "name", "device_type", "status", "location",
              "firmware_version", "hardware_version"):
        assert d[k] == device[k], (k, d[k], device[k])
    assert d["api_key"] == device["api_key"][:8] + "…", d["api_key"]
    assert_ts(d["created_at"]), assert_ts(d["updated_at"])
    assert d["is_online"] is False and d["last_seen"] is None
    assert_no_secrets(r, device["api_key"])


def test_device_status_by_id_admin(srv, device):
    expect(srv.admin.get(f"/devices/{device['id']}/status"), 200)


def test_device_status_by_id_not_found(shared_user):
    cases = {"unknown": "999999999", "alpha": "abc", "negative": "-1", "float": "1.5",
             "zero": "0"}
    expect_rejects(lambda i: shared_user.api.get(f"/devices/{i}/status"), cases, 404)


def test_device_status_by_id_not_owner(device, other_user):
    expect_error(other_user.api.get(f"/devices/{device['id']}/status"), 403)


def test_device_status_by_id_needs_credentials(srv, device):
    expect_error(srv.api.get(f"/devices/{device['id']}/status"), 401)


# ---------------------------------------------------------------- /devices/{id}/groups

def test_device_groups(device, owner):
    empty = expect(owner.api.get(f"/devices/{device['id']}/groups"), 200)
    assert empty["groups"] == [] and empty["total_groups"] == 0
    g1, g2 = create_group(owner, color="#112233"), create_group(owner)
    for g in (g1, g2):
        expect(owner.api.post(f"/groups/{g['id']}/devices", json={"device_id": device["id"]}), 201)
    data = expect(owner.api.get(f"/devices/{device['id']}/groups"), 200)
    assert (data["status"], data["device_id"], data["device_name"], data["total_groups"]) == \
        ("success", device["id"], device["name"], 2)
    by_id = {g["id"]: g for g in data["groups"]}
    assert set(by_id) == {g1["id"], g2["id"]}
    assert by_id[g1["id"]]["name"] == g1["name"] and by_id[g1["id"]]["color"] == "#112233"
    for g in data["groups"]:
        assert_ts(g["added_at"], what="added_at")


def test_device_groups_not_owner(device, other_user):
    expect_error(other_user.api.get(f"/devices/{device['id']}/groups"), 403)


def test_device_groups_unknown(owner):
    expect_error(owner.api.get("/devices/987654321/groups"), 404)


def test_device_groups_needs_credentials(srv, device):
    expect_error(srv.api.get(f"/devices/{device['id']}/groups"), 401)
