"""/users: read, list, update, activate/deactivate, delete."""
import pytest

from conftest import (assert_no_secrets, assert_user_dict, create_group,
                      error_text, expect, expect_error, expect_rejects, key_client, login,
                      make_user, register_device, register_user, unique)

NO_SUCH_USER = "f" * 32


# ---------------------------------------------------------------- GET /users/{id}

def test_get_self(user):
    r = user.api.get(f"/users/{user.user_id}")
    data = expect(r, 200)
    assert data["status"] == "success"
    assert_user_dict(data["user"], id=user.id, user_id=user.user_id,
                     username=user.username, email=user.email)
    assert_no_secrets(r, user.password)


def test_get_other_user_forbidden(user, other_user):
    expect_error(user.api.get(f"/users/{other_user.user_id}"), 403)


def test_get_user_without_credentials(srv, user):
    expect_error(srv.api.get(f"/users/{user.user_id}"), 401)


def test_get_user_as_admin(server, bearer_users):
    target = bearer_users.new()
    data = expect(server.admin.get(f"/users/{target.user_id}"), 200)
    assert data["user"]["username"] == target.username


def test_get_unknown_user_as_admin(server):
    expect_error(server.admin.get(f"/users/{NO_SUCH_USER}"), 404)


def test_admin_user_bearer_can_read_others(bearer_users):
    admin, target = bearer_users.admin_user(), bearer_users.new()
    expect(admin.api.get(f"/users/{target.user_id}"), 200)


# ---------------------------------------------------------------- GET /users

def test_list_users(server, bearer_users):
    created = {bearer_users.new().user_id for _ in range(2)}
    r = server.admin.get("/users", params={"limit": 1000})
    data = expect(r, 200)
    assert data["status"] == "success"
    assert data["meta"]["limit"] == 1000 and data["meta"]["offset"] == 0
    assert data["meta"]["total"] >= len(data["users"]) >= 2
    assert created <= {u["user_id"] for u in data["users"]}
    for u in data["users"]:
        assert_user_dict(u)
    assert_no_secrets(r)


def test_list_users_default_meta(server):
    meta = expect(server.admin.get("/users"), 200)["meta"]
    assert (meta["limit"], meta["offset"]) == (100, 0)


def test_list_users_limit_and_offset(server, bearer_users):
    for _ in range(3):
        bearer_users.new()
    page1 = expect(server.admin.get("/users", params={"limit": 2}), 200)
    page2 = expect(server.admin.get("/users", params={"limit": 2, "offset": 2}), 200)
    assert len(page1["users"]) == 2 and page2["meta"]["offset"] == 2
    ids1 = {u["id"] for u in page1["users"]}
    assert not ids1 & {u["id"] for u in page2["users"]}


def test_list_users_limit_is_clamped(server):
    assert expect(server.admin.get("/users", params={"limit": 5000}), 200)["meta"]["limit"] == 1000


def test_list_users_offset_past_end(server):
    data = expect(server.admin.get("/users", params={"offset": 10_000_000}), 200)
    assert data["users"] == []


def test_list_users_bad_paging(server):
    cases = {"neg-limit": {"limit": -1}, "neg-offset": {"offset": -5},
             "alpha-limit": {"limit": "abc"},
             "alpha-offset": {"offset": "1x"}, "empty-limit": {"limit": ""}}
    expect_rejects(lambda params: server.admin.get("/users", params=params), cases, 400)


def test_list_users_needs_admin(user, srv):
    expect_error(srv.api.get("/users"), 401)
    expect_error(user.api.get("/users"), 401, 403)


# ---------------------------------------------------------------- PUT /users/{id}

def test_update_own_email(user):
    new_email = unique("new") + "@example.org"
    r = user.api.put(f"/users/{user.user_id}", json={"email": new_email})
    data = expect(r, 200)
    assert data["status"] == "success" and data["message"]
    assert_user_dict(data["user"], email=new_email, user_id=user.user_id)
    assert expect(user.api.get(f"/users/{user.user_id}"), 200)["user"]["email"] == new_email


def test_update_own_username_then_login(user):
    new_name = unique("renamed")
    expect(user.api.put(f"/users/{user.user_id}", json={"username": new_name}), 200)
    expect(login(user.server, new_name, user.password), 200)
    expect_error(login(user.server, user.username, user.password), 401)


def test_update_password(user):
    new_pw = "brand-new-pw"
    r = user.api.put(f"/users/{user.user_id}", json={"password": new_pw})
    expect(r, 200)
    assert_no_secrets(r, new_pw)
    expect(login(user.server, user.username, new_pw), 200)
    expect_error(login(user.server, user.username, user.password), 401)


def test_update_ignores_server_owned_fields(user):
    r = user.api.put(f"/users/{user.user_id}", json={
        "email": unique("own") + "@example.com", "id": 1, "user_id": "0" * 32,
        "created_at": "2000-01-01T00:00:00.000Z", "last_login": None})
    if r.status_code == 400:
        expect_error(r, 400)
        return
    u = expect(r, 200)["user"]
    assert (u["id"], u["user_id"]) == (user.id, user.user_id), u
    assert u["created_at"] == user.info["created_at"]


def test_update_keeping_own_username_is_not_a_conflict(user):
    r = user.api.put(f"/users/{user.user_id}",
                     json={"username": user.username, "email": user.email})
    expect(r, 200)


def test_update_other_user_forbidden(user, other_user):
    expect_error(user.api.put(f"/users/{other_user.user_id}", json={"email": "x@y.z"}), 403)
    data = expect(other_user.api.get(f"/users/{other_user.user_id}"), 200)
    assert data["user"]["email"] == other_user.email


def test_update_without_credentials(srv, user):
    expect_error(srv.api.put(f"/users/{user.user_id}", json={"email": "x@y.z"}), 401)


@pytest.mark.parametrize("field,value", [("is_admin", True), ("is_active", False)])
def test_non_admin_cannot_set_privileges(user, field, value):
    r = user.api.put(f"/users/{user.user_id}", json={field: value})
    expect_error(r, 403)
    data = expect(user.api.get(f"/users/{user.user_id}"), 200)
    assert data["user"]["is_admin"] is False and data["user"]["is_active"] is True


@pytest.mark.parametrize("field", ["username", "email"])
def test_update_conflict(user, other_user, field):
    taken = getattr(other_user, field)
    err = expect_error(user.api.put(f"/users/{user.user_id}", json={field: taken}), 409)
    assert field in error_text(err)


@pytest.mark.parametrize("field", ["username", "email"])
def test_update_conflict_in_other_case(user, other_user, field):
    """Taking another account's name or email in another case is a 409 too."""
    taken = getattr(other_user, field).upper()
    err = expect_error(user.api.put(f"/users/{user.user_id}", json={field: taken}), 409)
    assert field in error_text(err)
    assert expect(user.api.get(f"/users/{user.user_id}"), 200)["user"][field] == \
        getattr(user, field)


def test_update_case_of_own_username(user):
    new = user.username.upper()
    data = expect(user.api.put(f"/users/{user.user_id}", json={"username": new}), 200)
    assert data["user"]["username"] == new
    expect(login(user.server, user.username.lower(), user.password), 200)


def test_update_invalid(shared_user):
    cases = {"empty": {}, "username-int": {"username": 123}, "email-bool": {"email": False},
             "password-int": {"password": 123456}, "username-short": {"username": "ab"},
             "username-long": {"username": "u" * 81}, "email-no-at": {"email": "no-at-sign"},
             "password-short": {"password": "123"}, "username-empty": {"username": ""},
             "username-zwsp": {"username": "ali\u200bce"}, "username-rlo": {"username": "\u202ealice"},
             "username-bom": {"username": "alice\ufeff"}, "username-ctrl": {"username": "ali\u001bce"},
             "email-two-at": {"email": "a@b@example.com"}, "email-no-dot": {"email": "a@example"},
             "email-space": {"email": "a b@example.com"}, "email-bidi": {"email": "a\u2067@example.com"},
             "password-blank": {"password": "       "},
             "array": [], "string": "just a string", "not-json": None}

    def send(body):
        url = f"/users/{shared_user.user_id}"
        if body is None:
            return shared_user.api.put(url, data="{oops")
        return shared_user.api.put(url, json=body)
    expect_rejects(send, cases, 400)
    assert expect(shared_user.api.get(f"/users/{shared_user.user_id}"), 200)["user"]["username"] \
        == shared_user.username


def test_admin_updates_privileges(server, bearer_users):
    target = bearer_users.new()
    r = server.admin.put(f"/users/{target.user_id}", json={"is_admin": True})
    assert expect(r, 200)["user"]["is_admin"] is True


def test_admin_update_wrong_types(server, bearer_users):
    target = bearer_users.new()
    cases = {"is_admin-str": {"is_admin": "yes"}, "is_active-int": {"is_active": 1},
             "is_admin-null": {"is_admin": None}}
    expect_rejects(lambda body: server.admin.put(f"/users/{target.user_id}", json=body), cases, 400)


def test_demoted_admin_loses_admin_access(server, bearer_users):
    admin = bearer_users.admin_user()
    expect(admin.api.get("/admin/stats"), 200)
    r = server.admin.put(f"/users/{admin.user_id}", json={"is_admin": False})
    assert expect(r, 200)["user"]["is_admin"] is False
    expect_error(admin.api.get("/admin/stats"), 403)
    expect(admin.api.get(f"/users/{admin.user_id}"), 200)


def test_update_moves_updated_at(server, user):
    before = expect(user.api.get(f"/users/{user.user_id}"), 200)["user"]
    r = user.api.put(f"/users/{user.user_id}", json={"email": unique("m") + "@example.net"})
    after = expect(r, 200)["user"]
    assert after["updated_at"] >= before["updated_at"]
    assert after["created_at"] == before["created_at"]


def test_admin_update_unknown_user(server):
    expect_error(server.admin.put(f"/users/{NO_SUCH_USER}", json={"email": "a@b.c"}), 404)


# ---------------------------------------------------------------- (de)activation

def test_deactivate_activate_cycle(server, bearer_users):
    target = bearer_users.new()
    path = f"/users/{target.user_id}"

    msg = expect(server.admin.patch(path + "/deactivate"), 200)["message"].lower()
    assert "deactivated" in msg and "already" not in msg
    assert expect(server.admin.get(path), 200)["user"]["is_active"] is False
    assert "already deactivated" in \
        expect(server.admin.patch(path + "/deactivate"), 200)["message"].lower()

    msg = expect(server.admin.patch(path + "/activate"), 200)["message"].lower()
    assert "activated" in msg and "already" not in msg
    assert expect(server.admin.get(path), 200)["user"]["is_active"] is True
    assert "already active" in \
        expect(server.admin.patch(path + "/activate"), 200)["message"].lower()


def test_deactivation_revokes_sessions_and_login(server, bearer_users):
    target = bearer_users.new()
    expect(target.api.get(f"/users/{target.user_id}"), 200)
    expect(server.admin.patch(f"/users/{target.user_id}/deactivate"), 200)
    expect_error(target.api.get(f"/users/{target.user_id}"), 401)
    expect_error(login(server, target.username, target.password), 401)
    expect(server.admin.patch(f"/users/{target.user_id}/activate"), 200)
    expect_error(target.api.get(f"/users/{target.user_id}"), 401)   # old session stays dead
    expect(login(server, target.username, target.password), 200)


@pytest.mark.parametrize("action", ["deactivate", "activate"])
def test_activation_unknown_user(server, action):
    expect_error(server.admin.patch(f"/users/{NO_SUCH_USER}/{action}"), 404)


def test_cannot_deactivate_admin(server, bearer_users):
    admin = bearer_users.admin_user()
    err = expect_error(server.admin.patch(f"/users/{admin.user_id}/deactivate"), 403)
    assert "admin" in err["error"].lower()


@pytest.mark.parametrize("action", ["deactivate", "activate"])
def test_activation_needs_admin(user, other_user, srv, action):
    expect_error(srv.api.patch(f"/users/{other_user.user_id}/{action}"), 401)
    expect_error(user.api.patch(f"/users/{other_user.user_id}/{action}"), 401, 403)
    expect_error(user.api.patch(f"/users/{user.user_id}/{action}"), 401, 403)


# ---------------------------------------------------------------- DELETE /users/{id}

def test_delete_user_cascades(server, bearer_users):
    target, bystander = bearer_users.new(), bearer_users.new()
    dev = register_device(target)
    group = create_group(target)
    other_dev = register_device(bystander)

    data = expect(server.admin.delete(f"/users/{target.user_id}"), 200)
    assert data["status"] == "success" and data["message"]

    expect_error(server.admin.get(f"/users/{target.user_id}"), 404)
    expect_error(key_client(server, dev["api_key"]).get("/devices/status"), 401)
    expect_error(server.admin.get(f"/admin/devices/{dev['id']}"), 404)
    expect_error(target.api.get(f"/users/{target.user_id}"), 401)
    # the group is gone: for another user it is "unknown" (404), not "not yours" (403)
    expect_error(bystander.api.get(f"/groups/{group['id']}"), 404)
    # other users' data is untouched
    expect(key_client(server, other_dev["api_key"]).get("/devices/status"), 200)


def test_deleted_user_legacy_header_is_refused(legacy_server):
    target = make_user(legacy_server, "legacy")
    expect(legacy_server.admin.delete(f"/users/{target.user_id}"), 200)
    expect_error(target.api.post("/devices/register", json={"name": "x"}), 401)
    expect_error(target.api.get("/groups"), 401)


def test_deleted_username_can_be_reused(server, bearer_users):
    target = bearer_users.new()
    expect(server.admin.delete(f"/users/{target.user_id}"), 200)
    info = register_user(server, username=target.username, email=target.email)[0]
    assert info["user_id"] != target.user_id


def test_delete_unknown_user(server):
    expect_error(server.admin.delete(f"/users/{NO_SUCH_USER}"), 404)


def test_cannot_delete_admin(server, bearer_users):
    admin = bearer_users.admin_user()
    err = expect_error(server.admin.delete(f"/users/{admin.user_id}"), 403)
    assert "admin" in err["error"].lower()
    expect(server.admin.get(f"/users/{admin.user_id}"), 200)


def test_delete_needs_admin(user, other_user, srv):
    expect_error(srv.api.delete(f"/users/{other_user.user_id}"), 401)
    expect_error(user.api.delete(f"/users/{other_user.user_id}"), 401, 403)
    expect_error(user.api.delete(f"/users/{user.user_id}"), 401, 403)
    expect(srv.admin.get(f"/users/{other_user.user_id}"), 200)


def test_admin_user_bearer_can_delete(server, bearer_users):
    admin, target = bearer_users.admin_user(), bearer_users.new()
    expect(admin.api.delete(f"/users/{target.user_id}"), 200)
    expect_error(server.admin.get(f"/users/{target.user_id}"), 404)


# ---------------------------------------------------------------- a deactivated owner's devices

def device_calls(server, device):
    """Every call a device key makes, each answering 2xx when allowed."""
    kc = key_client(server, device["api_key"])
    return {
        "telemetry": lambda: kc.post("/telemetry", json={"data": {"t": 1}}),
        "telemetry-batch": lambda: kc.post("/telemetry/batch", json=[{"data": {"t": 2}}]),
        "read-telemetry": lambda: kc.get(f"/telemetry/{device['id']}"),
        "heartbeat": lambda: kc.post("/devices/heartbeat"),
        "status": lambda: kc.get("/devices/status"),
        "config": lambda: kc.put("/devices/config", json={"status": "active"}),
        "credentials": lambda: kc.get("/devices/credentials"),
    }


@pytest.mark.parametrize("how", ["patch", "put"])
def test_deactivated_owner_devices_are_refused(server, bearer_users, how):
    """Deactivation stops the owner's device keys at once (no waiting for a
    cache to expire); activation lets them in again."""
    target = bearer_users.new()
    device = register_device(target)
    calls = device_calls(server, device)
    for name, call in calls.items():  # working, and now in the key cache
        assert call().status_code < 300, name
    if how == "patch":
        expect(server.admin.patch(f"/users/{target.user_id}/deactivate"), 200)
    else:
        expect(server.admin.put(f"/users/{target.user_id}", json={"is_active": False}), 200)
    for name, call in calls.items():
        err = expect_error(call(), 403)
        assert "deactivated" in error_text(err), (name, err)
    if how == "patch":
        expect(server.admin.patch(f"/users/{target.user_id}/activate"), 200)
    else:
        expect(server.admin.put(f"/users/{target.user_id}", json={"is_active": True}), 200)
    for name, call in calls.items():
        assert call().status_code < 300, name


def test_other_owners_devices_unaffected_by_deactivation(server, bearer_users):
    target, bystander = bearer_users.new(), bearer_users.new()
    register_device(target)
    dev = register_device(bystander)
    expect(server.admin.patch(f"/users/{target.user_id}/deactivate"), 200)
    expect(key_client(server, dev["api_key"]).post("/telemetry", json={"data": {"t": 1}}), 201)
