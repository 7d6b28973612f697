"""/admin endpoints and the admin authentication rules."""
import time

import pytest

from conftest import (assert_device_dict, assert_no_secrets, assert_ts, error_text,
                      expect, expect_error, expect_rejects, key_client, make_user,
                      register_device)

ADMIN_ENDPOINTS = [
    ("GET", "/admin/devices", None),
    ("GET", "/admin/devices/{dev}", None),
    ("PUT", "/admin/devices/{dev}", {"location": "x"}),
    ("PUT", "/admin/devices/{dev}/status", {"status": "active"}),
    ("DELETE", "/admin/devices/{dev}", None),
    ("GET", "/admin/stats", None),
    ("GET", "/admin/devices/statuses", None),
    ("GET", "/users", None),
]
IDS = [f"{m} {p}" for m, p, _ in ADMIN_ENDPOINTS]


@pytest.fixture
def owner(bearer_users):
    return bearer_users.new()


@pytest.fixture
def device(owner):
    return register_device(owner, location="Lab", description="d")


def call(client, method, path, body, dev, headers=None):
    """Issue one ADMIN_ENDPOINTS entry against device `dev`."""
    kw = {"json": body} if body is not None else {}
    return client.request(method, path.format(dev=dev["id"]), headers=headers, **kw)


# ---------------------------------------------------------------- authentication matrix

@pytest.mark.parametrize("method,path,body", ADMIN_ENDPOINTS, ids=IDS)
def test_admin_authentication(server, owner, device, admin_user, method, path, body):
    """Refusals first (the device must survive them), then the two ways in."""
    refusals = {
        "no-credentials": (None, (401,)),
        "wrong-admin-token": ("admin wrong-token", (403,)),
        "empty-admin-token": ("admin ", (401, 403)),
        "invalid-bearer": ("Bearer not-a-real-token", (401,)),
        "normal-user-bearer": (owner.headers["Authorization"], (403,)),
        "admin-token-as-bearer": (f"Bearer {server.admin_token}", (401,)),
    }
    failures = []
    for label, (header, statuses) in refusals.items():
        headers = {"Authorization": header} if header else {}
        try:
            err = expect_error(call(server.api, method, path, body, device, headers), *statuses)
            if label == "no-credentials" and path.startswith("/admin"):
                assert "admin token required" in error_text(err), err
        except AssertionError as e:
            failures.append(f"[case {label}] {e}")
    assert not failures, "\n\n".join(failures)
    expect(server.admin.get(f"/admin/devices/{device['id']}"), 200)
    expect(call(admin_user.api, method, path, body, device), 200)


def test_admin_token_is_case_sensitive(server):
    bad = "admin " + server.admin_token.upper()
    if bad != "admin " + server.admin_token:
        expect_error(server.api.get("/admin/stats", headers={"Authorization": bad}), 403)


def test_no_admin_token_configured(start_server):
    s = start_server(admin_token=None)
    for token in ("anything", "None", "null", "0"):
        r = s.api.get("/admin/stats", headers={"Authorization": f"admin {token}"})
        expect_error(r, 403)
    expect_error(s.api.get("/admin/stats", headers={"Authorization": "admin "}), 401, 403)
    expect(s.root.get("/health"), 200)


# ---------------------------------------------------------------- devices

def test_list_all_devices(server, device, owner):
    r = server.admin.get("/admin/devices", params={"limit": 1000})
    data = expect(r, 200)
    assert data["status"] == "success"
    assert data["total_devices"] >= len(data["devices"]) >= 1
    assert isinstance(data["meta"], dict)
    mine = [d for d in data["devices"] if d["id"] == device["id"]]
    if data["total_devices"] <= len(data["devices"]):
        assert len(mine) == 1
        assert_device_dict(mine[0], user_id=owner.id, name=device["name"])
    for d in data["devices"]:
        assert_device_dict(d)
    assert_no_secrets(r, device["api_key"])


def test_get_device(server, device, owner):
    r = server.admin.get(f"/admin/devices/{device['id']}")
    data = expect(r, 200)
    assert data["status"] == "success"
    assert_device_dict(data["device"], id=device["id"], name=device["name"], user_id=owner.id,
                       location="Lab")
    assert_no_secrets(r, device["api_key"])


def test_unknown_device(server):
    cases = {f"{m} {i}": (m, b, i) for m, b in (("GET", None), ("PUT", {"location": "x"}),
                                                ("DELETE", None))
             for i in ("987654321", "abc", "-1")}
    cases["PUT status"] = ("PUT", {"status": "active"}, "987654321/status")

    def send(case):
        method, body, dev_id = case
        kw = {"json": body} if body is not None else {}
        return server.admin.request(method, f"/admin/devices/{dev_id}", **kw)
    expect_rejects(send, cases, 404)


def test_update_device(server, device):
    body = {"name": device["name"] + "-x", "description": "updated", "device_type": "meter",
            "status": "maintenance", "location": "Basement", "firmware_version": "3.1",
            "hardware_version": "v9"}
    r = server.admin.put(f"/admin/devices/{device['id']}", json=body)
    data = expect(r, 200)
    assert data["status"] == "success" and data["message"]
    assert_device_dict(data["device"], id=device["id"], **body)
    assert_no_secrets(r, device["api_key"])
    again = expect(server.admin.get(f"/admin/devices/{device['id']}"), 200)["device"]
    assert {k: again[k] for k in body} == body


def test_update_device_invalid(server, device):
    cases = {"empty": {}, "bad-status": {"status": "exploded"}, "name-empty": {"name": ""},
             "name-int": {"name": 3}, "location-bool": {"location": False},
             "firmware-long": {"firmware_version": "x" * 21}, "name-101": {"name": "n" * 101},
             "array": [], "unknown-only": {"colour": "red"}}
    expect_rejects(lambda body: server.admin.put(f"/admin/devices/{device['id']}", json=body),
                   cases, 400)
    assert expect(server.admin.get(f"/admin/devices/{device['id']}"), 200)["device"] \
        ["location"] == "Lab"


def test_admin_update_cannot_move_or_rekey_device(server, owner, device, bearer_users):
    other = bearer_users.new()
    r = server.admin.put(f"/admin/devices/{device['id']}", json={
        "location": "Moved", "user_id": other.id, "api_key": "C" * 32, "id": 1})
    if r.status_code == 400:
        expect_error(r, 400)
    else:
        d = expect(r, 200)["device"]
        assert (d["id"], d["user_id"]) == (device["id"], owner.id), d
    expect(key_client(server, device["api_key"]).get("/devices/credentials"), 200)
    expect_error(key_client(server, "C" * 32).get("/devices/credentials"), 401)


def test_update_device_name_conflict(server, owner, device):
    other = register_device(owner)
    r = server.admin.put(f"/admin/devices/{device['id']}", json={"name": other["name"]})
    expect_error(r, 409)


@pytest.mark.parametrize("new", ["active", "maintenance", "inactive"])
def test_set_device_status(server, device, new):
    data = expect(server.admin.put(f"/admin/devices/{device['id']}/status",
                                   json={"status": new}), 200)
    assert data["status"] == "success" and data["message"]
    assert (data["device_id"], data["old_status"], data["new_status"]) == \
        (device["id"], "inactive", new)
    assert expect(server.admin.get(f"/admin/devices/{device['id']}"), 200)["device"]["status"] \
        == new


def test_maintenance_set_by_admin_blocks_device(server, device):
    expect(server.admin.put(f"/admin/devices/{device['id']}/status",
                            json={"status": "maintenance"}), 200)
    kc = key_client(server, device["api_key"])
    expect_error(kc.post("/devices/heartbeat"), 403)
    expect(kc.get("/devices/credentials"), 200)


def test_set_device_status_invalid(server, device):
    cases = {"empty": {}, "invalid": {"status": "broken"}, "null": {"status": None},
             "int": {"status": 1}, "wrong-key": {"state": "active"}, "upper": {"status": "ACTIVE"},
             "array": ["active"]}
    expect_rejects(lambda body: server.admin.put(f"/admin/devices/{device['id']}/status",
                                                 json=body), cases, 400)


def test_delete_device(server, device, owner):
    kc = key_client(server, device["api_key"])
    expect(kc.get("/devices/status"), 200)
    data = expect(server.admin.delete(f"/admin/devices/{device['id']}"), 200)
    assert data["status"] == "success" and data["message"]
    assert data["device_id"] == device["id"]
    expect_error(kc.get("/devices/status"), 401)
    expect_error(server.admin.get(f"/admin/devices/{device['id']}"), 404)
    expect_error(server.admin.delete(f"/admin/devices/{device['id']}"), 404)
    assert expect(owner.api.get(f"/devices/user/{owner.user_id}"), 200)["total_devices"] == 0
    # the name is free again for that owner
    register_device(owner, name=device["name"])


# ---------------------------------------------------------------- stats / statuses

def stats(server):
    data = expect(server.admin.get("/admin/stats"), 200)
    assert data["status"] == "success"
    assert_ts(data["timestamp"])
    s = data["device_stats"]
    for k in ("total", "active", "inactive", "maintenance", "online", "offline"):
        assert isinstance(s[k], int) and s[k] >= 0, (k, s)
    assert s["total"] == s["active"] + s["inactive"] + s["maintenance"], s
    assert data["total_devices"] == s["total"]
    return s


def test_stats_follow_device_lifecycle(server, owner):
    # An active device never seen: not every active device is online.
    quiet = register_device(owner)
    expect(server.admin.put(f"/admin/devices/{quiet['id']}/status", json={"status": "active"}), 200)
    before = stats(server)
    dev = register_device(owner)
    after_reg = stats(server)
    assert after_reg["total"] == before["total"] + 1
    assert after_reg["inactive"] == before["inactive"] + 1
    expect(key_client(server, dev["api_key"]).post("/devices/heartbeat"), 200)
    after_hb = stats(server)
    assert after_hb["active"] == before["active"] + 1
    assert after_hb["online"] == before["online"] + 1
    expect(server.admin.put(f"/admin/devices/{dev['id']}/status",
                            json={"status": "maintenance"}), 200)
    off = stats(server)
    assert off["maintenance"] == before["maintenance"] + 1
    # Online counts active devices only: switched off, it is not online,
    # even when it still reads its credentials.
    assert off["online"] == before["online"]
    expect(key_client(server, dev["api_key"]).get("/devices/credentials"), 200)
    assert stats(server)["online"] == before["online"]
    expect(server.admin.delete(f"/admin/devices/{dev['id']}"), 200)
    assert stats(server)["total"] == before["total"]


def test_device_statuses(server, owner):
    seen, unseen = register_device(owner), register_device(owner)
    expect(key_client(server, seen["api_key"]).post("/devices/heartbeat"), 200)
    r = server.admin.get("/admin/devices/statuses", params={"limit": 1000})
    data = expect(r, 200)
    assert data["status"] == "success"
    assert data["meta"]["limit"] == 1000 and data["meta"]["offset"] == 0
    assert data["meta"]["total"] >= len(data["devices"])
    by_id = {d["id"]: d for d in data["devices"]}
    for d in data["devices"]:
        assert {"id", "name", "device_type", "status", "is_online", "last_seen"} <= set(d), d
        assert_ts(d["last_seen"], nullable=True)
    if data["meta"]["total"] <= 1000:
        assert by_id[seen["id"]]["is_online"] is True
        assert_ts(by_id[seen["id"]]["last_seen"])
        assert by_id[unseen["id"]]["is_online"] is False
        assert by_id[unseen["id"]]["last_seen"] is None
    assert_no_secrets(r, seen["api_key"], unseen["api_key"])


def test_device_statuses_paging(server, owner):
    for _ in range(3):
        register_device(owner)
    p1 = expect(server.admin.get("/admin/devices/statuses", params={"limit": 2}), 200)
    p2 = expect(server.admin.get("/admin/devices/statuses",
                                 params={"limit": 2, "offset": 2}), 200)
    assert len(p1["devices"]) == 2 and p1["meta"]["limit"] == 2
    assert p2["meta"]["offset"] == 2
    assert not {d["id"] for d in p1["devices"]} & {d["id"] for d in p2["devices"]}
    clamped = expect(server.admin.get("/admin/devices/statuses", params={"limit": 10**6}), 200)
    assert clamped["meta"]["limit"] == 1000


@pytest.mark.parametrize("path", ["/admin/devices/statuses", "/admin/devices"])
def test_admin_lists_bad_paging(server, path):
    cases = {"neg-limit": {"limit": -1}, "neg-offset": {"offset": -1},
             "alpha-limit": {"limit": "many"}, "alpha-offset": {"offset": "x"}}
    expect_rejects(lambda params: server.admin.get(path, params=params), cases, 400)


# ---------------------------------------------------------------- admin-token guessing

def minute(t):
    return int(t // 60)


def test_failed_admin_tokens_are_throttled(start_server):
    """Past IOTFLOW_ADMIN_FAIL_LIMIT failures a minute from one address, its
    admin requests get 429 + Retry-After, even with the right token (else 429
    vs 200 would still tell a guesser which guess is right); successes do not
    count; one log line per address and minute, however many guesses."""
    server = start_server(env={"IOTFLOW_ADMIN_FAIL_LIMIT": "3"})
    wrong = server.api.with_headers({"Authorization": "admin wrong-token"})
    for _ in range(20):  # successes are not counted
        expect(server.admin.get("/admin/stats"), 200)
    for attempt in range(2):  # a second go only if a minute boundary split the first
        start = time.time()
        codes = [wrong.get("/admin/stats").status_code for _ in range(3)]
        locked = wrong.get("/admin/stats")
        right = server.admin.get("/admin/stats")
        if minute(start) == minute(time.time()):
            break
    assert codes == [403, 403, 403], codes
    for r in (locked, right):
        err = expect_error(r, 429)
        assert "admin" in error_text(err), err
        retry = r.headers.get("Retry-After", "")
        assert retry.isdigit() and 0 < int(retry) <= 60, r.headers
    for _ in range(50):
        expect_error(wrong.get("/admin/devices"), 429)
    # users and devices are not admin-token requests: not affected
    user = make_user(server, "bearer")
    expect(user.api.get(f"/users/{user.user_id}"), 200)
    lines = [ln for ln in server.stderr().splitlines() if "invalid admin token" in ln]
    assert 1 <= len(lines) <= 2 * (attempt + 1), lines


def test_admin_throttle_off(start_server):
    server = start_server(env={"IOTFLOW_ADMIN_FAIL_LIMIT": "0"})
    wrong = server.api.with_headers({"Authorization": "admin wrong-token"})
    for _ in range(15):
        expect_error(wrong.get("/admin/stats"), 403)
    expect(server.admin.get("/admin/stats"), 200)


# ---------------------------------------------------------------- a device switched off by an admin

def admin_set_status(server, device, status, route):
    if route == "status":
        r = server.admin.put(f"/admin/devices/{device['id']}/status", json={"status": status})
    else:
        r = server.admin.put(f"/admin/devices/{device['id']}", json={"status": status})
    return expect(r, 200)


@pytest.mark.parametrize("route", ["status", "update"])
@pytest.mark.parametrize("off", ["inactive", "maintenance"])
def test_device_switched_off_by_admin_stays_off(server, owner, device, route, off):
    """The device's own traffic does not override an admin: no activation
    "on first use", no status change through PUT /devices/config; 403 with
    who switched it off and how to switch it back on. An admin switching it
    on again lets it in."""
    kc = key_client(server, device["api_key"])
    expect(kc.post("/telemetry", json={"data": {"t": 1}}), 201)  # in use, then off
    admin_set_status(server, device, off, route)
    refused = {
        "telemetry": lambda: kc.post("/telemetry", json={"data": {"t": 2}}),
        "batch": lambda: kc.post("/telemetry/batch", json=[{"data": {"t": 3}}]),
        "read-telemetry": lambda: kc.get(f"/telemetry/{device['id']}"),
        "latest": lambda: kc.get(f"/telemetry/{device['id']}/latest"),
        "heartbeat": lambda: kc.post("/devices/heartbeat"),
        "status": lambda: kc.get("/devices/status"),
        "config-on": lambda: kc.put("/devices/config", json={"status": "active"}),
    }
    for name, call in refused.items():
        err = expect_error(call(), 403)
        text = error_text(err)
        assert "admin" in text and f"/admin/devices/{device['id']}/status" in err["message"], \
            (name, err)
    d = expect(server.admin.get(f"/admin/devices/{device['id']}"), 200)["device"]
    assert (d["status"], d["status_set_by"]) == (off, "admin"), d
    seen_by_owner = expect(owner.api.get(f"/devices/{device['id']}/status"), 200)["device"]
    assert seen_by_owner["status_set_by"] == "admin", seen_by_owner
    # still allowed: its credentials, and config that leaves the status as the admin set it
    expect(kc.get("/devices/credentials"), 200)
    cfg = expect(kc.put("/devices/config", json={"status": off, "location": "Shelf"}), 200)
    assert (cfg["device"]["status"], cfg["device"]["location"]) == (off, "Shelf")

    admin_set_status(server, device, "active", route)
    for name in ("telemetry", "read-telemetry", "heartbeat", "status"):
        assert refused[name]().status_code < 300, name
    # switched on by a person, the device may manage itself again
    d = expect(kc.put("/devices/config", json={"status": "maintenance"}), 200)["device"]
    assert (d["status"], d["status_set_by"]) == ("maintenance", "device"), d
    d = expect(kc.put("/devices/config", json={"status": "active"}), 200)["device"]
    assert d["status"] == "active"


def test_new_device_activates_on_first_use(server, device):
    """Never used (status_set_by "new") is not switched off: first telemetry
    activates it, and the device is recorded as having set its status."""
    assert device["status_set_by"] == "new"
    kc = key_client(server, device["api_key"])
    expect(kc.post("/telemetry", json={"data": {"t": 1}}), 201)
    d = expect(server.admin.get(f"/admin/devices/{device['id']}"), 200)["device"]
    assert (d["status"], d["status_set_by"]) == ("active", "device"), d


def test_device_switched_off_by_itself_switches_back_on(server, device):
    kc = key_client(server, device["api_key"])
    expect(kc.put("/devices/config", json={"status": "inactive"}), 200)
    expect(kc.post("/telemetry", json={"data": {"t": 1}}), 201)  # first use again
    d = expect(server.admin.get(f"/admin/devices/{device['id']}"), 200)["device"]
    assert (d["status"], d["status_set_by"]) == ("active", "device"), d
