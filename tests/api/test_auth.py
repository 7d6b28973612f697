"""POST /auth/register, /auth/login, /auth/logout and how credentials are
accepted (Bearer tokens, the legacy X-User-ID header)."""
import secrets

import pytest

from conftest import (assert_no_secrets, assert_ts, assert_user_dict, describe,
                      error_text, expect, expect_error, expect_rejects, login, make_user,
                      register_user, unique)


DROP = object()   # marks a field to leave out of the request body


def reg_body(**over):
    name = unique("reg")
    body = {"username": name, "email": f"{name}@example.com", "password": "secret-pw"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not DROP}


# ---------------------------------------------------------------- register

def test_register_success(server):
    body = reg_body()
    r = server.api.post("/auth/register", json=body)
    data = expect(r, 201)
    assert data["status"] == "success"
    assert isinstance(data["message"], str) and data["message"]
    assert_user_dict(data["user"], username=body["username"], email=body["email"],
                     is_active=True, is_admin=False, last_login=None)
    assert_no_secrets(r, body["password"])


def test_register_assigns_distinct_ids(server):
    a, b = register_user(server)[0], register_user(server)[0]
    assert a["id"] != b["id"] and a["user_id"] != b["user_id"]


REGISTER_INVALID = {
    "garbage": "not json", "truncated": "{", "trailing-comma": '{"username": "abc",}',
    "array": "[]", "number": "42", "string": '"text"', "null": "null", "empty-body": "",
    "no-username": {"username": DROP}, "no-email": {"email": DROP},
    "no-password": {"password": DROP}, "empty-username": {"username": ""},
    "empty-email": {"email": ""}, "empty-password": {"password": ""},
    "username-int": {"username": 123}, "email-bool": {"email": True},
    "password-list": {"password": ["secret-pw"]}, "username-null": {"username": None},
    "email-object": {"email": {"a": 1}}, "password-int": {"password": 123456},
    "username-2": {"username": "ab"}, "username-81": {"username": "u" * 81},
    "username-82-bytes": {"username": "é" * 41},   # 41 characters, 82 bytes
    "email-no-at": {"email": "no-at-sign.example.com"},
    "email-121": {"email": "a" * 109 + "@example.com"},
    "password-5": {"password": "12345"},
    # invisible and control characters (they make two names look alike)
    "username-zwsp": {"username": "ali\u200bce"}, "username-zwj": {"username": "ali\u200dce"},
    "username-lrm": {"username": "alice\u200e"}, "username-rlo": {"username": "\u202eecila"},
    "username-isolate": {"username": "al\u2066ice\u2069"},
    "username-word-joiner": {"username": "ali\u2060ce"}, "username-bom": {"username": "\ufeffalice"},
    "username-line-sep": {"username": "ali\u2028ce"}, "username-bell": {"username": "ali\u0007ce"},
    "username-newline": {"username": "ali\nce"}, "username-tab": {"username": "ali\tce"},
    "username-nbsp": {"username": "ali\u00a0ce"}, "username-leading-space": {"username": " alice"},
    "username-trailing-space": {"username": "alice "},
    "email-two-at": {"email": "a@b@example.com"}, "email-no-domain-dot": {"email": "alice@localhost"},
    "email-empty-local": {"email": "@example.com"}, "email-empty-domain": {"email": "alice@"},
    "email-space": {"email": "ali ce@example.com"}, "email-zwsp": {"email": "alice\u200b@example.com"},
    "email-double-dot": {"email": "alice@example..com"},
    "email-header": {"email": "Alice <alice@example.com>"},
    "email-local-65": {"email": "a" * 65 + "@example.com"},
    "password-spaces": {"password": "        "},
    "password-blank-unicode": {"password": "\u00a0\u3000 \u200b\t\u2003\u2003"},
}


def test_register_rejects_invalid_input(server):
    def send(case):
        if isinstance(case, str):
            return server.api.post("/auth/register", data=case)
        return server.api.post("/auth/register", json=reg_body(**case))
    expect_rejects(send, REGISTER_INVALID, 400)


@pytest.mark.parametrize("over", [
    {"username": lambda: unique("x")[-3:]},              # exactly 3
    {"username": lambda: unique("u").ljust(80, "z")},    # exactly 80 bytes
    # 120 bytes, the longest local part (64)
    {"email": lambda: unique("e").ljust(64, "m") + "@" + "d" * 51 + ".com"},
    {"password": lambda: "123456"},                      # exactly 6
], ids=["username-3", "username-80", "email-120", "password-6"])
def test_register_accepts_boundary_lengths(server, over):
    body = reg_body(**{k: f() for k, f in over.items()})
    data = expect(server.api.post("/auth/register", json=body), 201)
    assert data["user"]["username"] == body["username"]
    assert data["user"]["email"] == body["email"]


@pytest.mark.parametrize("field,text", [("username", "Username already exists"),
                                        ("email", "Email already exists")])
def test_register_duplicate_conflicts(server, field, text):
    _, username, email, _ = register_user(server)
    body = reg_body(**{field: username if field == "username" else email})
    err = expect_error(server.api.post("/auth/register", json=body), 409)
    assert text.lower() in error_text(err), err


def test_register_error_names_the_problem(server):
    err = expect_error(server.api.post("/auth/register",
                                       json=reg_body(username="ali\u200bce")), 400)
    assert "invisible" in err["message"], err
    err = expect_error(server.api.post("/auth/register", json=reg_body(email="alice@localhost")),
                       400)
    assert "domain" in err["message"], err
    err = expect_error(server.api.post("/auth/register", json=reg_body(password=" " * 8)), 400)
    assert "password" in err["message"], err


def test_register_accepts_unicode_names(server):
    body = reg_body(username="J\u00fcrgen " + unique("")[-6:], email=f"{unique('j')}@b\u00fccher.de")
    data = expect(server.api.post("/auth/register", json=body), 201)
    assert (data["user"]["username"], data["user"]["email"]) == (body["username"], body["email"])


@pytest.mark.parametrize("field", ["username", "email"])
def test_register_duplicate_in_other_case_conflicts(server, field):
    """ALICE and alice are one account: the second registration is a 409."""
    _, username, email, _ = register_user(server, username=unique("Case"))
    taken = {"username": username.upper(), "email": email.upper()}[field]
    err = expect_error(server.api.post("/auth/register", json=reg_body(**{field: taken})), 409)
    assert field in error_text(err), err
    swapped = {"username": username.swapcase(), "email": email.swapcase()}[field]
    expect_error(server.api.post("/auth/register", json=reg_body(**{field: swapped})), 409)


def test_login_username_in_any_case(server):
    info, username, _, password = register_user(server, username=unique("MiXeD"))
    for typed in (username, username.lower(), username.upper(), username.swapcase()):
        data = expect(login(server, typed, password), 200)
        assert data["user"]["user_id"] == info["user_id"], typed
        assert data["user"]["username"] == username  # as registered


def test_register_ignores_privilege_fields(server):
    body = reg_body(is_admin=True, is_active=False)
    r = server.api.post("/auth/register", json=body)
    if r.status_code == 201:
        assert r.json()["user"]["is_admin"] is False, describe(r)
    else:
        expect_error(r, 400)


# ---------------------------------------------------------------- login

def test_login_success(server):
    info, username, _, password = register_user(server)
    r = login(server, username, password)
    data = expect(r, 200)
    assert data["status"] == "success" and data["message"]
    assert data["token_type"] == "Bearer"
    assert isinstance(data["token"], str) and len(data["token"]) >= 16
    assert isinstance(data["expires_in"], int) and data["expires_in"] > 0
    assert_user_dict(data["user"], user_id=info["user_id"], username=username)
    assert_ts(data["user"]["last_login"], what="last_login after login")
    assert_no_secrets(r, password)


def test_login_sets_last_login(server):
    user = make_user(server, "bearer")
    r = user.api.get(f"/users/{user.user_id}")
    assert_ts(expect(r, 200)["user"]["last_login"], what="last_login")


def test_each_login_issues_a_new_token(server):
    _, username, _, password = register_user(server)
    t1 = expect(login(server, username, password), 200)["token"]
    t2 = expect(login(server, username, password), 200)["token"]
    assert t1 != t2


def test_login_missing_fields(server):
    cases = {"empty": {}, "no-password": {"username": "someone"},
             "no-username": {"password": "secret-pw"},
             "empty-username": {"username": "", "password": "secret-pw"},
             "empty-password": {"username": "someone", "password": ""},
             "username-int": {"username": 5, "password": "secret-pw"},
             "garbage": "nope", "array": "[1]", "number": "7"}

    def send(case):
        if isinstance(case, str):
            return server.api.post("/auth/login", data=case)
        return server.api.post("/auth/login", json=case)
    expect_rejects(send, cases, 400)


def test_login_wrong_password(server):
    _, username, _, _ = register_user(server)
    expect_error(login(server, username, "wrong-password"), 401)


def test_login_unknown_user(server):
    expect_error(login(server, unique("ghost"), "whatever-pw"), 401)


def test_login_password_is_case_sensitive(server):
    _, username, _, _ = register_user(server, password="CaseSensitive1")
    expect_error(login(server, username, "casesensitive1"), 401)


def test_login_deactivated_account(server):
    _, username, _, password = register_user(server)
    info = expect(login(server, username, password), 200)["user"]
    expect(server.admin.patch(f"/users/{info['user_id']}/deactivate"), 200)
    expect_error(login(server, username, password), 401)


# ---------------------------------------------------------------- bearer tokens / logout

def test_bad_bearer_is_401(server):
    target = register_user(server)[0]["user_id"]
    cases = {"unknown-token": "Bearer " + "0" * 64, "empty-token": "Bearer ",
             "scheme-only": "Bearer",
             "garbage": "bearer-ish token", "basic": "Basic dXNlcjpwYXNz",
             "double-space": "Bearer  x", "very-long": "Bearer " + "x" * 5000}
    expect_rejects(lambda h: server.api.get(f"/users/{target}", headers={"Authorization": h}),
                   cases, 401)


def test_logout_revokes_token(server):
    user = make_user(server, "bearer")
    expect(user.api.get(f"/users/{user.user_id}"), 200)
    data = expect(user.api.post("/auth/logout"), 200)
    assert data.get("status") == "success"
    expect_error(user.api.get(f"/users/{user.user_id}"), 401)
    expect_error(user.api.post("/devices/register", json={"name": "d"}), 401)


def test_logout_only_revokes_that_token(server):
    user = make_user(server, "bearer")
    second = login(server, user.username, user.password).json()["token"]
    expect(user.api.post("/auth/logout"), 200)
    r = server.api.get(f"/users/{user.user_id}",
                       headers={"Authorization": f"Bearer {second}"})
    expect(r, 200)


def test_logout_without_token(server):
    expect(server.api.post("/auth/logout"), 200)


def test_login_after_logout_works(server):
    user = make_user(server, "bearer")
    expect(user.api.post("/auth/logout"), 200)
    token = expect(login(server, user.username, user.password), 200)["token"]
    r = server.api.get(f"/users/{user.user_id}", headers={"Authorization": f"Bearer {token}"})
    expect(r, 200)


# ---------------------------------------------------------------- X-User-ID trust

TRUST_PROBES = [
    ("GET", "/users/{uid}", None),
    ("GET", "/devices/user/{uid}", None),
    ("POST", "/devices/register", {"name": "probe"}),
    ("GET", "/groups", None),
    ("POST", "/groups", {"name": "probe"}),
]


@pytest.mark.parametrize("method,path,body", TRUST_PROBES,
                         ids=[f"{m} {p}" for m, p, _ in TRUST_PROBES])
def test_x_user_id_ignored_without_trust(server, method, path, body):
    uid = register_user(server)[0]["user_id"]
    kw = {"json": body} if body is not None else {}
    r = server.api.request(method, path.format(uid=uid), headers={"X-User-ID": uid}, **kw)
    expect_error(r, 401)


def test_x_user_id_accepted_with_trust(legacy_server):
    uid = register_user(legacy_server)[0]["user_id"]
    r = legacy_server.api.get(f"/users/{uid}", headers={"X-User-ID": uid})
    assert expect(r, 200)["user"]["user_id"] == uid


def test_x_user_id_unknown_is_401(legacy_server):
    cases = {"unknown": "0" * 32, "malformed": "not-a-user-id", "empty": "",
             "uppercase": register_user(legacy_server)[0]["user_id"].upper(),
             "sql": "' OR '1'='1"}
    expect_rejects(lambda v: legacy_server.api.post("/devices/register", json={"name": "x"},
                                                    headers={"X-User-ID": v}), cases, 401)


def test_x_user_id_of_deactivated_user_is_401(legacy_server):
    uid = register_user(legacy_server)[0]["user_id"]
    expect(legacy_server.admin.patch(f"/users/{uid}/deactivate"), 200)
    r = legacy_server.api.post("/devices/register", json={"name": "x"},
                               headers={"X-User-ID": uid})
    expect_error(r, 401)


def test_bearer_also_works_in_legacy_mode(legacy_server):
    user = make_user(legacy_server, "bearer")
    expect(user.api.get(f"/users/{user.user_id}"), 200)


def test_token_is_not_a_user_id(server):
    """The Bearer token must be opaque: a user_id used as token is refused."""
    uid = register_user(server)[0]["user_id"]
    r = server.api.get(f"/users/{uid}", headers={"Authorization": f"Bearer {uid}"})
    expect_error(r, 401)


def test_random_token_guess_is_refused(server):
    uid = register_user(server)[0]["user_id"]
    r = server.api.get(f"/users/{uid}",
                       headers={"Authorization": f"Bearer {secrets.token_urlsafe(32)}"})
    expect_error(r, 401)
