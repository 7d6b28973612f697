"""/groups: CRUD, membership, bulk add, listing devices of a group."""
import pytest

from conftest import (assert_device_dict, assert_group_dict, assert_no_secrets, assert_ts,
                      create_group, expect, expect_error, expect_rejects, key_client,
                      register_device, unique)


def add(user, group, device):
    return user.api.post(f"/groups/{group['id']}/devices", json={"device_id": device["id"]})


def get_group(user, group, **params):
    return expect(user.api.get(f"/groups/{group['id']}", params=params), 200)["group"]


@pytest.fixture
def owner(shared_user):
    """Long-lived per-mode user, for tests that do not count its groups."""
    return shared_user


@pytest.fixture
def group(owner):
    return create_group(owner)


# ---------------------------------------------------------------- create

def test_create_group(owner):
    name = unique("living room")
    r = owner.api.post("/groups", json={"name": name, "description": "all of it",
                                       "color": "#FF5733"})
    data = expect(r, 201)
    assert data["status"] == "success" and data["message"]
    assert_group_dict(data["group"], name=name, description="all of it", color="#FF5733",
                      user_id=owner.id, device_count=0)


def test_create_group_name_only(owner):
    name = unique("g")
    assert_group_dict(create_group(owner, name=name), name=name, device_count=0)


def test_create_group_invalid(owner):
    cases = {
        "empty": {}, "name-empty": {"name": ""}, "name-null": {"name": None},
        "name-int": {"name": 12}, "name-101": {"name": "g" * 101}, "color-word": {"color": "red"},
        "color-short": {"color": "#12345"}, "color-nonhex": {"color": "#GGGGGG"},
        "color-no-hash": {"color": "123456"}, "color-long": {"color": "#1234567"},
        "color-int": {"color": 0xFF5733}, "description-int": {"description": 3},
        "not-json": "{", "array": "[]", "number": "3",
    }

    def send(body):
        if isinstance(body, str):
            return owner.api.post("/groups", data=body)
        if body and "name" not in body:
            body = {"name": unique("g"), **body}
        return owner.api.post("/groups", json=body)
    expect_rejects(send, cases, 400)


def test_create_group_name_100_bytes(owner):
    name = unique("g").ljust(100, "x")
    assert create_group(owner, name=name)["name"] == name


def test_create_group_duplicate(owner, other_user):
    name = unique("dup")
    create_group(owner, name=name)
    expect_error(owner.api.post("/groups", json={"name": name}), 409)
    assert create_group(other_user, name=name)["user_id"] == other_user.id


def test_create_group_needs_user(srv):
    expect_error(srv.api.post("/groups", json={"name": "g"}), 401)


# ---------------------------------------------------------------- list

def test_list_groups(user, other_user):
    mine = {create_group(user)["id"] for _ in range(3)}
    create_group(other_user)
    data = expect(user.api.get("/groups"), 200)
    assert data["status"] == "success"
    assert {g["id"] for g in data["groups"]} == mine
    assert data["meta"] == {"total": 3, "limit": 100, "offset": 0}
    for g in data["groups"]:
        assert_group_dict(g, user_id=user.id)


def test_list_groups_include_devices(user):
    group = create_group(user)
    dev = register_device(user)
    expect(add(user, group, dev), 201)
    r = user.api.get("/groups", params={"include_devices": "true"})
    (g,) = expect(r, 200)["groups"]
    assert g["device_count"] == 1
    (d,) = g["devices"]
    assert_device_dict(d, id=dev["id"], name=dev["name"])
    assert_no_secrets(r, dev["api_key"])


def test_inline_members_are_bounded(bearer_users):
    """include_devices lists at most 1000 members per response in all; a
    group whose members did not fit says devices_truncated, and its own
    devices endpoint still pages through every one."""
    user = bearer_users.new()
    big, small = create_group(user), create_group(user)
    ids = [register_device(user)["id"] for _ in range(1100)]
    for group, part in ((big, ids[:700]), (small, ids[700:])):
        r = user.api.post(f"/groups/{group['id']}/devices/bulk", json={"device_ids": part})
        expect(r, 200, 201)
    r = user.api.get("/groups", params={"include_devices": "true"})
    groups = expect(r, 200)["groups"]
    listed = sum(len(g["devices"]) for g in groups)
    assert listed == 1000, f"{listed} members listed inline"
    cut = [g for g in groups if g.get("devices_truncated")]
    assert len(cut) == 1 and len(cut[0]["devices"]) < cut[0]["device_count"], \
        [(g["id"], len(g["devices"]), g["device_count"], g.get("devices_truncated")) for g in groups]
    whole = get_group(user, big)
    assert len(whole["devices"]) == 700 and "devices_truncated" not in whole


def test_list_groups_paging(user):
    ids = {create_group(user)["id"] for _ in range(3)}
    p1 = expect(user.api.get("/groups", params={"limit": 2}), 200)
    p2 = expect(user.api.get("/groups", params={"limit": 2, "offset": 2}), 200)
    assert p1["meta"] == {"total": 3, "limit": 2, "offset": 0}
    assert len(p1["groups"]) == 2 and len(p2["groups"]) == 1
    assert {g["id"] for g in p1["groups"] + p2["groups"]} == ids
    assert expect(user.api.get("/groups", params={"limit": 50000}), 200)["meta"]["limit"] == 1000


def test_list_groups_bad_paging(owner):
    cases = {"neg-limit": {"limit": -2}, "neg-offset": {"offset": -1},
             "alpha-limit": {"limit": "x"},
             "float-offset": {"offset": "1.5"}}
    expect_rejects(lambda params: owner.api.get("/groups", params=params), cases, 400)


def test_list_groups_needs_user(srv):
    expect_error(srv.api.get("/groups"), 401)


# ---------------------------------------------------------------- get / update / delete

def test_get_group(owner, group):
    dev = register_device(owner)
    expect(add(owner, group, dev), 201)
    g = get_group(owner, group)
    assert_group_dict(g, id=group["id"], name=group["name"], device_count=1)
    assert [d["id"] for d in g["devices"]] == [dev["id"]]
    assert "devices" not in get_group(owner, group, include_devices="false")


@pytest.mark.parametrize("method,body", [("GET", None), ("PUT", {"name": "mine now"}),
                                         ("DELETE", None)])
def test_group_of_other_user_forbidden(owner, other_user, method, body):
    theirs = create_group(other_user)
    kw = {"json": body} if body is not None else {}
    expect_error(owner.api.request(method, f"/groups/{theirs['id']}", **kw), 403)
    assert get_group(other_user, theirs)["name"] == theirs["name"]


def test_unknown_group(owner):
    cases = {"GET": ("GET", None), "PUT": ("PUT", {"name": "x"}), "DELETE": ("DELETE", None),
             "GET-devices": ("GET", None, "/devices"),
             "POST-devices": ("POST", {"device_id": 1}, "/devices"),
             "POST-bulk": ("POST", {"device_ids": [1]}, "/devices/bulk"),
             "DELETE-member": ("DELETE", None, "/devices/1")}

    def send(case):
        method, body, *suffix = case
        kw = {"json": body} if body is not None else {}
        return owner.api.request(method, "/groups/987654321" + "".join(suffix), **kw)
    expect_rejects(send, cases, 404)


def test_update_group(owner, group):
    body = {"name": unique("renamed"), "description": "new text", "color": "#00ff00"}
    data = expect(owner.api.put(f"/groups/{group['id']}", json=body), 200)
    assert data["status"] == "success" and data["message"]
    assert_group_dict(data["group"], id=group["id"], **body)
    assert {k: get_group(owner, group)[k] for k in body} == body


def test_update_group_partial(owner):
    g = create_group(owner, description="keep me", color="#ABCDEF")
    data = expect(owner.api.put(f"/groups/{g['id']}", json={"name": unique("n")}), 200)
    assert data["group"]["description"] == "keep me" and data["group"]["color"] == "#ABCDEF"


def test_update_group_rename_conflict(owner, group):
    taken = create_group(owner)
    expect_error(owner.api.put(f"/groups/{group['id']}", json={"name": taken["name"]}), 409)
    expect(owner.api.put(f"/groups/{group['id']}", json={"name": group["name"]}), 200)


def test_update_group_invalid(owner, group):
    cases = {"color": {"color": "blue"}, "name-empty": {"name": ""}, "name-int": {"name": 5},
             "name-101": {"name": "n" * 101}, "empty": {}, "array": [],
             "color-int": {"color": 5}}
    expect_rejects(lambda body: owner.api.put(f"/groups/{group['id']}", json=body), cases, 400)
    assert get_group(owner, group)["name"] == group["name"]


def test_delete_group_keeps_devices(owner, group):
    dev = register_device(owner)
    expect(add(owner, group, dev), 201)
    data = expect(owner.api.delete(f"/groups/{group['id']}"), 200)
    assert data["status"] == "success" and data["message"]
    expect_error(owner.api.get(f"/groups/{group['id']}"), 404)
    expect(owner.api.get(f"/devices/{dev['id']}/status"), 200)
    assert expect(owner.api.get(f"/devices/{dev['id']}/groups"), 200)["total_groups"] == 0


def test_group_id_not_numeric(owner):
    cases = {p: p for p in ("/groups/abc", "/groups/-3", "/groups/1.0", "/groups/1e2")}
    expect_rejects(lambda path: owner.api.get(path), cases, 404)


# ---------------------------------------------------------------- membership

def test_add_and_remove_device(owner, group):
    dev = register_device(owner)
    data = expect(add(owner, group, dev), 201)
    assert data["status"] == "success" and data["message"]
    m = data["membership"]
    assert (m["group_id"], m["device_id"]) == (group["id"], dev["id"])
    assert_ts(m["added_at"], what="added_at")
    assert get_group(owner, group)["device_count"] == 1

    expect_error(add(owner, group, dev), 409)

    data = expect(owner.api.delete(f"/groups/{group['id']}/devices/{dev['id']}"), 200)
    assert data["status"] == "success"
    assert get_group(owner, group)["device_count"] == 0
    expect_error(owner.api.delete(f"/groups/{group['id']}/devices/{dev['id']}"), 404)


def test_add_someone_elses_device(owner, other_user, group):
    theirs = register_device(other_user)
    expect_error(add(owner, group, theirs), 403)


def test_add_to_someone_elses_group(owner, other_user):
    theirs = create_group(other_user)
    expect_error(add(owner, theirs, register_device(owner)), 403)


def test_add_unknown_device(owner, group):
    expect_error(add(owner, group, {"id": 987654321}), 404)


def test_add_device_bad_id(owner, group):
    cases = {"missing": {}, "string": {"device_id": "abc"}, "null": {"device_id": None},
             "float": {"device_id": 1.5}, "bool": {"device_id": True}, "list": {"device_id": [1]},
             "not-json": "{", "array": "[1]"}

    def send(body):
        url = f"/groups/{group['id']}/devices"
        if isinstance(body, str):
            return owner.api.post(url, data=body)
        return owner.api.post(url, json=body)
    expect_rejects(send, cases, 400)


def test_add_device_to_unknown_group(owner):
    dev = register_device(owner)
    expect_error(add(owner, {"id": 987654321}, dev), 404)


def test_remove_from_someone_elses_group(owner, other_user):
    theirs = create_group(other_user)
    dev = register_device(other_user)
    expect(add(other_user, theirs, dev), 201)
    expect_error(owner.api.delete(f"/groups/{theirs['id']}/devices/{dev['id']}"), 403)
    assert get_group(other_user, theirs)["device_count"] == 1


def test_membership_needs_user(srv, owner, group):
    dev = register_device(owner)
    expect_error(srv.api.post(f"/groups/{group['id']}/devices",
                              json={"device_id": dev["id"]}), 401)
    expect_error(srv.api.get(f"/groups/{group['id']}/devices"), 401)


# ---------------------------------------------------------------- group devices listing

def test_list_group_devices(owner, group):
    devs = [register_device(owner, device_type=t) for t in ("sensor", "sensor", "actuator")]
    for d in devs:
        expect(add(owner, group, d), 201)
    expect(key_client(owner.server, devs[0]["api_key"]).get("/devices/status"), 200)

    r = owner.api.get(f"/groups/{group['id']}/devices")
    data = expect(r, 200)
    assert (data["status"], data["group_id"], data["group_name"]) == \
        ("success", group["id"], group["name"])
    assert data["meta"] == {"total": 3, "limit": 100, "offset": 0}
    assert {d["id"] for d in data["devices"]} == {d["id"] for d in devs}
    for d in data["devices"]:
        assert_device_dict(d)
        assert_ts(d["added_to_group_at"], what="added_to_group_at")
    assert_no_secrets(r, *[d["api_key"] for d in devs])

    def ids(**params):
        body = expect(owner.api.get(f"/groups/{group['id']}/devices", params=params), 200)
        return {d["id"] for d in body["devices"]}

    assert ids(status="active") == {devs[0]["id"]}
    assert ids(status="inactive") == {devs[1]["id"], devs[2]["id"]}
    assert ids(device_type="actuator") == {devs[2]["id"]}
    assert ids(status="active", device_type="actuator") == set()
    assert len(ids(limit=2)) == 2
    assert ids(limit=2) | ids(limit=2, offset=2) == {d["id"] for d in devs}


def test_list_group_devices_bad_paging(owner, group):
    cases = {"neg-limit": {"limit": -1}, "alpha-offset": {"offset": "abc"},
             "neg-offset": {"offset": -9}}
    expect_rejects(lambda params: owner.api.get(f"/groups/{group['id']}/devices", params=params),
                   cases, 400)


def test_list_group_devices_other_user(owner, other_user):
    theirs = create_group(other_user)
    expect_error(owner.api.get(f"/groups/{theirs['id']}/devices"), 403)


# ---------------------------------------------------------------- bulk

def test_bulk_add(owner, other_user, group):
    mine = [register_device(owner) for _ in range(3)]
    theirs = register_device(other_user)
    expect(add(owner, group, mine[0]), 201)
    ids = [d["id"] for d in mine] + [theirs["id"], 987654321]
    r = owner.api.post(f"/groups/{group['id']}/devices/bulk", json={"device_ids": ids})
    data = expect(r, 201)
    assert data["status"] == "success" and data["message"]
    assert (data["added"], data["skipped"]) == (2, 3)
    assert sorted(data["details"]["added_device_ids"]) == sorted([mine[1]["id"], mine[2]["id"]])
    assert sorted(data["details"]["skipped_device_ids"]) == \
        sorted([mine[0]["id"], theirs["id"], 987654321])
    assert get_group(owner, group)["device_count"] == 3


def test_bulk_add_repeat_is_all_skipped(owner, group):
    ids = [register_device(owner)["id"] for _ in range(2)]
    url = f"/groups/{group['id']}/devices/bulk"
    expect(owner.api.post(url, json={"device_ids": ids}), 201)
    data = expect(owner.api.post(url, json={"device_ids": ids}), 201)
    assert (data["added"], data["skipped"]) == (0, 2)


def test_bulk_add_duplicates_in_one_request(owner, group):
    dev = register_device(owner)
    data = expect(owner.api.post(f"/groups/{group['id']}/devices/bulk",
                                 json={"device_ids": [dev["id"], dev["id"]]}), 201)
    assert (data["added"], data["skipped"]) == (1, 1), data
    assert get_group(owner, group)["device_count"] == 1


def test_bulk_add_1000_ids_is_the_limit(owner, group):
    dev = register_device(owner)
    ids = [dev["id"]] + list(range(10**8, 10**8 + 999))
    data = expect(owner.api.post(f"/groups/{group['id']}/devices/bulk",
                                 json={"device_ids": ids}), 201)
    assert (data["added"], data["skipped"]) == (1, 999)


def test_bulk_add_non_integer_items(owner, group):
    dev = register_device(owner)
    r = owner.api.post(f"/groups/{group['id']}/devices/bulk",
                       json={"device_ids": [dev["id"], "x", None, 1.5, True, [1]]})
    if r.status_code == 400:
        expect_error(r, 400)
        assert get_group(owner, group)["device_count"] == 0
    else:
        data = expect(r, 201)
        assert (data["added"], data["skipped"]) == (1, 5), data


def test_bulk_add_empty_list(owner, group):
    data = expect(owner.api.post(f"/groups/{group['id']}/devices/bulk",
                                json={"device_ids": []}), 201)
    assert (data["added"], data["skipped"]) == (0, 0)


def test_bulk_add_invalid(owner, group):
    one = register_device(owner)["id"]
    cases = {"missing": {}, "int": {"device_ids": 5}, "string": {"device_ids": "1,2"},
             "object": {"device_ids": {"a": 1}}, "null": {"device_ids": None},
             "1001-ids": {"device_ids": [one] + list(range(10**8, 10**8 + 1000))}}
    expect_rejects(lambda body: owner.api.post(f"/groups/{group['id']}/devices/bulk", json=body),
                   cases, 400)
    assert get_group(owner, group)["device_count"] == 0


def test_bulk_add_other_users_group(owner, other_user):
    theirs = create_group(other_user)
    expect_error(owner.api.post(f"/groups/{theirs['id']}/devices/bulk",
                               json={"device_ids": [register_device(owner)["id"]]}), 403)


def test_deleted_device_leaves_groups(owner, group):
    dev = register_device(owner)
    expect(add(owner, group, dev), 201)
    expect(owner.server.admin.delete(f"/admin/devices/{dev['id']}"), 200)
    g = get_group(owner, group)
    assert g["device_count"] == 0 and g["devices"] == []
