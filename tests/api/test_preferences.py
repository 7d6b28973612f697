"""User preferences (documents store): GET/PUT /users/{user_id}/preferences,
for the user itself or the admin; the defaults, the checks of the known
keys, the size limit, and their removal with the user."""
import pytest

from conftest import expect, expect_error, key_client, register_device
from docs_store import count_docs, docs_embedded

DEFAULTS = {"units": "metric", "timezone": "UTC", "notifications": {}, "dashboard": {}}


def prefs_path(user):
    return f"/users/{user.user_id}/preferences"


def test_defaults_when_none(user):
    body = expect(user.api.get(prefs_path(user)), 200)
    assert body == {"user_id": user.user_id, "preferences": DEFAULTS, "updated_at": None}


def test_put_and_get(user):
    prefs = {"units": "imperial", "timezone": "America/Argentina/Buenos_Aires",
             "notifications": {"email": True, "quiet_hours": [22, 7]},
             "dashboard": {"layout": "grid", "widgets": ["a", "b"]}, "theme": "dark"}
    body = expect(user.api.put(prefs_path(user), json=prefs), 200)
    assert body["preferences"] == prefs and body["updated_at"].endswith("Z")
    assert expect(user.api.get(prefs_path(user)), 200) == body


def test_missing_keys_read_as_defaults(user):
    body = expect(user.api.put(prefs_path(user), json={"theme": "light"}), 200)
    assert body["preferences"] == {**DEFAULTS, "theme": "light"}
    # PUT replaces what is stored
    body = expect(user.api.put(prefs_path(user), json={"units": "imperial"}), 200)
    assert body["preferences"] == {**DEFAULTS, "units": "imperial"}


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "Etc/GMT+5", "America/Port-au-Prince",
                                "America/Indiana/Knox", "GMT"])
def test_time_zones_accepted(user, tz):
    expect(user.api.put(prefs_path(user), json={"timezone": tz}), 200)


@pytest.mark.parametrize("prefs", [
    {"units": "kelvin"}, {"units": 1}, {"units": None}, {"timezone": ""}, {"timezone": 5},
    {"timezone": "Europe/"}, {"timezone": "/Paris"}, {"timezone": "Europe//Paris"},
    {"timezone": "Europe/Paris Time"}, {"timezone": "../etc/passwd"}, {"timezone": "A/B/C/D"},
    {"timezone": "1Europe/Paris"}, {"timezone": "E" * 65}, {"notifications": []},
    {"notifications": True}, {"dashboard": "grid"}, {"dashboard": None},
])
def test_bad_preferences(user, prefs):
    expect_error(user.api.put(prefs_path(user), json=prefs), 400)
    assert expect(user.api.get(prefs_path(user)), 200)["preferences"] == DEFAULTS


@pytest.mark.parametrize("body", ["[]", "{", "\"x\"", "7"])
def test_not_an_object(user, body):
    expect_error(user.api.put(prefs_path(user), data=body), 400)


def test_size_limit(user):
    expect(user.api.put(prefs_path(user), json={"k": "x" * (16 * 1024 - 8)}), 200)
    expect_error(user.api.put(prefs_path(user), json={"k": "x" * (16 * 1024)}), 413)


def test_access(user, other_user, srv):
    expect_error(other_user.api.get(prefs_path(user)), 403)
    expect_error(other_user.api.put(prefs_path(user), json={}), 403)
    expect_error(srv.api.get(prefs_path(user)), 401)
    dev = register_device(user)
    expect_error(key_client(srv, dev["api_key"]).get(prefs_path(user)), 401)
    body = expect(srv.admin.put(prefs_path(user), json={"units": "imperial"}), 200)
    assert body["user_id"] == user.user_id
    assert expect(user.api.get(prefs_path(user)), 200)["preferences"]["units"] == "imperial"
    expect_error(srv.admin.get("/users/0123456789abcdef0123456789abcdef/preferences"), 404)
    expect_error(srv.admin.get("/users/nope/preferences"), 404)


def test_deleted_with_the_user(users, srv):
    user = users.new()
    expect(user.api.put(prefs_path(user), json={"units": "imperial"}), 200)
    expect(srv.admin.delete(f"/users/{user.user_id}"), 200)
    expect_error(srv.admin.get(prefs_path(user)), 404)
    if docs_embedded(srv):
        assert count_docs(srv, "prefs", user_id=user.id) == 0
