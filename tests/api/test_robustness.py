"""Generic rules: unknown routes, methods, body limits, malformed input,
byte-exact text, headers, rate limits, access log, concurrency, raw-socket
abuse, persistence and clean shutdown."""
import concurrent.futures
import json
import socket
import subprocess
import time
import uuid

import pytest
import requests

from conftest import (API, BINARY, Server, assert_std_headers, create_group, describe, expect,
                      expect_error, expect_rejects, key_client, login, make_user, register_device,
                      register_user, unique)


@pytest.fixture(autouse=True)
def still_healthy(bearer_server):
    """After every abuse test the shared server still answers /health."""
    yield
    r = requests.get(bearer_server.base + "/health", timeout=30)
    assert r.status_code == 200, describe(r)


@pytest.fixture
def ctx(bearer_server):
    """A user with a device and a group on the shared bearer server."""
    def build():
        user = make_user(bearer_server, "bearer")
        return {"user": user, "device": register_device(user), "group": create_group(user)}
    return bearer_server.memo("robustness-ctx", build)


# ---------------------------------------------------------------- routing

UNKNOWN_PATHS = [
    "/nope", "/api/v1/nope", "/ui", "/api/v2/devices/status", "/healthz",
    "/api/v1/devices/1/nope", "/api/v1/users/abc/def/ghi", "/api/v1/groups/1/devices/2/x",
    "/api/v1/admin", "/api/v1/admin/nothing", "/api/v1/devices/%2e%2e/status",
    "/api/v1/auth", "/api/v1/auth/login/extra", "/API/V1/AUTH/LOGIN", "/ui/js/pages/x/y.js",
]


def test_unknown_route_is_json_404(server):
    expect_rejects(lambda p: server.root.get(p), {p: p for p in UNKNOWN_PATHS}, 404)
    expect_rejects(lambda p: server.root.post(p, json={}), {p: p for p in UNKNOWN_PATHS[:5]}, 404)
    expect_rejects(lambda p: server.root.get(p), {"nul": "/%00", "nul-api": "/api/v1/%00x"},
                   400, 404)


METHOD_CASES = [
    ("DELETE", "/health", "GET"), ("POST", "/status", "GET"), ("PUT", "/", "GET"),
    ("GET", API + "/auth/login", "POST"), ("PUT", API + "/auth/register", "POST"),
    ("GET", API + "/auth/logout", "POST"), ("POST", API + "/devices/status", "GET"),
    ("GET", API + "/devices/heartbeat", "POST"), ("POST", API + "/devices/config", "PUT"),
    ("DELETE", API + "/devices/credentials", "GET"), ("GET", API + "/devices/register", "POST"),
    ("PATCH", API + "/groups", "POST"), ("POST", API + "/admin/stats", "GET"),
    ("GET", API + "/users/" + "a" * 32 + "/deactivate", "PATCH"),
    ("GET", API + "/groups/1/devices/bulk", "POST"),
    ("PATCH", API + "/admin/devices/1", "GET"), ("POST", API + "/users", "GET"),
]


def test_wrong_method_is_405_with_allow(server):
    def send(case):
        method, path, allowed = case
        r = server.root.request(method, path)
        allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
        assert allowed in allow, f"Allow header lacks {allowed}\n{describe(r)}"
        return r
    expect_rejects(send, {f"{m} {p}": (m, p, a) for m, p, a in METHOD_CASES}, 405)


def test_405_allow_lists_every_method(server):
    r = server.api.patch("/groups")
    expect_error(r, 405)
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",")}
    assert {"GET", "POST"} <= allow, describe(r)


# ---------------------------------------------------------------- body size

@pytest.fixture(scope="module")
def small_body_server():
    s = Server(trust_user_id=True, env={"IOTFLOW_MAX_BODY": "1024"}).start()
    yield s
    s.stop_and_check()
    s.cleanup()


def padded_registration(size):
    name = unique("big")
    body = {"username": name, "email": f"{name}@example.com", "password": "secret-pw",
            "pad": ""}
    body["pad"] = "x" * (size - len(json.dumps(body)))
    raw = json.dumps(body)
    assert len(raw) == size
    return raw


def test_body_over_limit_is_413(small_body_server):
    def send(n):
        r = small_body_server.api.post("/auth/register", data=padded_registration(n))
        assert_std_headers(r)
        return r
    expect_rejects(send, {str(n): n for n in (1025, 4096, 200_000)}, 413)


def test_body_at_limit_is_accepted(small_body_server):
    r = small_body_server.api.post("/auth/register", data=padded_registration(1024))
    expect(r, 201)


def test_body_limit_on_authenticated_route(small_body_server):
    uid = register_user(small_body_server)[0]["user_id"]
    r = small_body_server.api.post("/groups", headers={"X-User-ID": uid},
                                   json={"name": "g", "description": "d" * 2000})
    expect_error(r, 413)


def test_chunked_body_over_limit(small_body_server):
    def chunks():
        yield b'{"username": "chunky", "pad": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'
    r = small_body_server.api.post("/auth/register", data=chunks(),
                                   headers={"Content-Type": "application/json"})
    expect_error(r, 400, 411, 413)
    assert small_body_server.root.get("/health").status_code == 200


# ---------------------------------------------------------------- malformed JSON everywhere

def json_routes(ctx):
    g, d = ctx["group"]["id"], ctx["device"]["id"]
    uid = ctx["user"].user_id
    return {
        "register": ("POST", "/auth/register", None),
        "login": ("POST", "/auth/login", None),
        "user-put": ("PUT", f"/users/{uid}", "user"),
        "device-register": ("POST", "/devices/register", "user"),
        "device-config": ("PUT", "/devices/config", "key"),
        "group-create": ("POST", "/groups", "user"),
        "group-put": ("PUT", f"/groups/{g}", "user"),
        "group-add": ("POST", f"/groups/{g}/devices", "user"),
        "group-bulk": ("POST", f"/groups/{g}/devices/bulk", "user"),
        "admin-device-put": ("PUT", f"/admin/devices/{d}", "admin"),
        "admin-status-put": ("PUT", f"/admin/devices/{d}/status", "admin"),
    }


def auth_for(ctx, server, kind):
    return {"user": ctx["user"].headers, "key": {"X-API-Key": ctx["device"]["api_key"]},
            "admin": server.admin_headers}.get(kind, {})


ROUTES = ["register", "login", "user-put", "device-register", "device-config",
          "group-create", "group-put", "group-add", "group-bulk", "admin-device-put",
          "admin-status-put"]
BAD_BODIES = {
    "garbage": b"this is not json",
    "truncated": b'{"name": "x"',
    "array": b'[{"name": "x"}]',
    "number": b"12345",
    "invalid-utf8": b'{"name": "\xff\xfe", "status": "\xc3"}',
}


@pytest.mark.parametrize("route", ROUTES)
def test_malformed_body_is_400(server, ctx, route):
    method, path, auth = json_routes(ctx)[route]
    headers = {**auth_for(ctx, server, auth), "Content-Type": "application/json"}
    expect_rejects(lambda raw: server.api.request(method, path, data=raw, headers=headers),
                   BAD_BODIES, 400)


EXOTIC_JSON = {
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "huge-number": b'{"username": 1e999999, "email": "a@b", "password": "secret"}',
    "lone-surrogate": b'{"username": "\\ud800x", "email": "a@b.c", "password": "secret-pw"}',
    "short-escape": b'{"username": "\\u12", "email": "a@b.c", "password": "secret-pw"}',
    "bad-escape": b'{"username": "\\q", "email": "a@b.c", "password": "secret-pw"}',
    "raw-control-char": b'{"username": "tab\there", "email": "a@b.c", "password": "secret-pw"}',
    "missing-colon": b'{"username" "abc"}',
    "unquoted-key": b'{username: "abc"}',
    "single-quotes": b"{'username': 'abc'}",
    "trailing-data": b'{"username": "abc", "email": "a@b.c", "password": "secret-pw"} x',
    "nan": b'{"username": NaN, "email": "a@b.c", "password": "secret-pw"}',
    "binary": b"\x00\x01\x02",
    "empty": b"",
    "bom": b'\xef\xbb\xbf{"username": 1}',
}


def test_exotic_json_is_400(server):
    expect_rejects(lambda raw: server.api.post(
        "/auth/register", data=raw, headers={"Content-Type": "application/json"}),
        EXOTIC_JSON, 400)


def test_malformed_json_error_quoting_invalid_utf8_is_400(server):
    """jansson's error message quotes the text it choked on, cut after the
    first byte of the character at fault: a backslash before a multi-byte
    character ends the quote inside it. The 400 must still be built (it was
    a 500, "response could not be built": found by fuzzing)."""
    cases = {"backslash-e-acute": '{"username": "caf\\é", "password": "x"}'.encode(),
             "backslash-cjk": '{"data": {"s": "\\掣"}}'.encode()}
    expect_rejects(lambda raw: server.api.post(
        "/auth/register", data=raw, headers={"Content-Type": "application/json"}), cases, 400)


def test_json_escapes_are_decoded(server):
    suffix = uuid.uuid4().hex[:8]
    raw = ('{"username": "esc\\u00e9\\ud83d\\ude80\\"\\\\\\/%s", "email": "%s@example.com",'
           ' "password": "secret-pw"}' % (suffix, suffix)).encode()
    data = expect(server.api.post("/auth/register", data=raw), 201)
    assert data["user"]["username"] == f'escé🚀"\\/{suffix}'


def test_embedded_nul_is_400(server, ctx):
    user, nul = ctx["user"], "bad\u0000value"

    def reg(field, value):
        body = {"username": unique("nul"), "email": unique("nul") + "@example.com",
                "password": "secret-pw", field: value}
        return lambda: server.api.post("/auth/register", json=body)

    cases = {
        "username": reg("username", nul),
        "email": reg("email", nul + "@example.com"),
        "password": reg("password", nul + "xxxxxx"),
        "device-name": lambda: user.api.post("/devices/register", json={"name": nul}),
        "device-location": lambda: user.api.post(
            "/devices/register", json={"name": unique("d"), "device_type": "t", "location": nul}),
        "group-name": lambda: user.api.post("/groups", json={"name": nul}),
        "login-username": lambda: login(server, user.username + "\u0000", user.password),
        "user-put-email": lambda: user.api.put(f"/users/{user.user_id}",
                                               json={"email": "a\u0000@b.c"}),
    }
    expect_rejects(lambda thunk: thunk(), cases, 400)


# ---------------------------------------------------------------- byte-exact text

TEXTS = {
    "unicode": "Ünïcødé 温度 🚀",
    "quotes": "say \"hi\" and 'bye'",
    "backslash": "C:\\path\\to \\n \\u0041 \\\\",
    "sql": "x'; DROP TABLE users; --",
    "html": "<script>alert(1)</script>&amp;",
    "format": "%s %n %x %% {0} ${HOME} %(x)s",
    "control": "tab\there\nnewline\r\u0001\u001f\u007f",
    "json-ish": '{"a": [1, 2], "b": null}',
}


@pytest.mark.parametrize("kind", list(TEXTS))
def test_device_text_round_trip(server, ctx, kind):
    text, user = TEXTS[kind], ctx["user"]
    name = text + " " + uuid.uuid4().hex[:6]
    dev = register_device(user, name=name, description=text, location=text,
                          device_type=text[:50])
    fields = {"name": name, "description": text, "location": text, "device_type": text[:50]}
    assert {k: dev[k] for k in fields} == fields
    via_key = expect(key_client(server, dev["api_key"]).get("/devices/status"), 200)["device"]
    assert {k: via_key[k] for k in fields} == fields
    listed = expect(user.api.get(f"/devices/user/{user.user_id}", params={"limit": 1000}), 200)
    (mine,) = [d for d in listed["devices"] if d["id"] == dev["id"]]
    assert {k: mine[k] for k in fields} == fields
    # a name that looks like SQL must not match anything else
    assert sum(d["name"] == name for d in listed["devices"]) == 1


@pytest.mark.parametrize("kind", ["unicode", "quotes", "sql", "backslash"])
def test_user_text_round_trip(server, kind):
    username = TEXTS[kind] + uuid.uuid4().hex[:6]
    email = TEXTS[kind].replace(" ", "") + uuid.uuid4().hex[:6] + "@example.com"
    info, _, _, password = register_user(server, username=username, email=email,
                                         password=TEXTS[kind] + "pw")
    assert (info["username"], info["email"]) == (username, email)
    data = expect(login(server, username, TEXTS[kind] + "pw"), 200)
    assert data["user"]["username"] == username
    got = expect(server.admin.get(f"/users/{info['user_id']}"), 200)["user"]
    assert (got["username"], got["email"]) == (username, email)
    expect_error(login(server, username, TEXTS[kind]), 401)


@pytest.mark.parametrize("kind", ["unicode", "sql", "control"])
def test_group_text_round_trip(ctx, kind):
    user, text = ctx["user"], TEXTS[kind]
    name = text + uuid.uuid4().hex[:6]
    g = create_group(user, name=name, description=text)
    got = expect(user.api.get(f"/groups/{g['id']}"), 200)["group"]
    assert (got["name"], got["description"]) == (name, text)


def test_unicode_query_filter(ctx):
    user = ctx["user"]
    group = create_group(user)
    kind = "温度 🚀 " + uuid.uuid4().hex[:4]
    dev = register_device(user, device_type=kind)
    other = register_device(user)
    for d in (dev, other):
        expect(user.api.post(f"/groups/{group['id']}/devices", json={"device_id": d["id"]}), 201)
    r = user.api.get(f"/groups/{group['id']}/devices", params={"device_type": kind})
    assert [d["id"] for d in expect(r, 200)["devices"]] == [dev["id"]]


# ---------------------------------------------------------------- headers

def header_probes(server, ctx):
    return {
        "200": lambda: server.root.get("/health"),
        "201": lambda: server.api.post("/auth/register", json={
            "username": unique("h"), "email": unique("h") + "@x.io", "password": "secret-pw"}),
        "400": lambda: server.api.post("/auth/login", data="{"),
        "401": lambda: server.api.get("/devices/status"),
        "403": lambda: server.api.get("/admin/stats", headers={"Authorization": "admin no"}),
        "404": lambda: server.root.get("/no/such/route"),
        "405": lambda: server.root.delete("/health"),
        "409": lambda: ctx["user"].api.post("/groups", json={"name": ctx["group"]["name"]}),
    }


@pytest.mark.parametrize("status", ["200", "201", "400", "401", "403", "404", "405", "409"])
def test_security_and_request_id_headers(server, ctx, status):
    r = header_probes(server, ctx)[status]()
    assert r.status_code == int(status), describe(r)
    assert_std_headers(r)
    assert "application/json" in r.headers.get("Content-Type", ""), describe(r)


def test_request_id_is_echoed(server):
    rid = "test-" + str(uuid.uuid4())
    for r in (server.root.get("/health", headers={"X-Request-ID": rid}),
              server.api.get("/devices/status", headers={"X-Request-ID": rid})):
        assert r.headers.get("X-Request-ID") == rid, describe(r)


def test_request_ids_are_unique(server):
    ids = {server.root.get("/health").headers.get("X-Request-ID") for _ in range(5)}
    assert None not in ids and len(ids) == 5, ids


def test_insane_request_id_is_replaced(server):
    for rid in ["a" * 2000, "bad\u0001id", "x y <script>"]:
        r = server.root.get("/health", headers={"X-Request-ID": rid})
        got = r.headers.get("X-Request-ID")
        assert got and got != rid, describe(r)


# ---------------------------------------------------------------- odd ids, params, urls

def test_odd_ids_never_crash(ctx):
    paths = ["/devices/99999999999999999999999999/status", "/devices/0/status",
             "/devices/00001x/status", "/devices/%39%38%37%36%35%34%33/status?x=%ZZ",
             "/groups/18446744073709551616",
             "/groups/9223372036854775807/devices", "/devices/user/" + "a" * 5000,
             "/devices/user/%00", "/users/..%2f..%2fetc%2fpasswd"]
    expect_rejects(lambda p: ctx["user"].api.get(p), {p[:40]: p for p in paths},
                   400, 401, 403, 404, 414)


def test_odd_limit_values(ctx):
    for value in ["99999999999999999999", "1e3", "0x10", "  5", "+5", "5.0", "0"]:
        r = ctx["user"].api.get("/groups", params={"limit": value})
        assert r.status_code in (200, 400), describe(r)
        if r.status_code == 200:
            assert 0 <= r.json()["meta"]["limit"] <= 1000, describe(r)


def test_odd_device_id_in_body(ctx):
    g = ctx["group"]["id"]
    cases = {"1e30": 10**30, "neg": -1, "zero": 0, "2^63": 2**63, "string-digit": "1"}
    expect_rejects(lambda i: ctx["user"].api.post(f"/groups/{g}/devices", json={"device_id": i}),
                   cases, 400, 404)


def assert_still_serving(server, what):
    """The server survived `what`: its process runs and it answers /health.
    (A dropped connection alone proves nothing: a crash drops it too.)"""
    assert server.alive(), (f"server died after {what} (exit {server.proc.returncode}); "
                            f"stderr tail:\n{server.stderr()[-3000:]}")
    r = server.root.get("/health")
    assert r.status_code == 200, f"after {what}: {describe(r)}"


def answer_or_drop(send):
    """send()'s response, or None when the server closed the connection
    while the client was still sending (libmicrohttpd answers an oversized
    request line or header at once and closes; the client may see the
    reset before the answer)."""
    try:
        return send()
    except requests.ConnectionError:
        return None


def test_very_long_url(server):
    r = answer_or_drop(lambda: server.root.get("/api/v1/" + "x" * 100_000))
    if r is not None:
        assert r.status_code == 414, describe(r)
    assert_still_serving(server, "a 100 kB URL")


def test_huge_and_many_headers(server):
    cases = {"one 100 kB header": {"X-Big": "b" * 100_000},
             "2000 headers": {f"X-H{i}": "v" for i in range(2000)}}
    for what, headers in cases.items():
        r = answer_or_drop(lambda: server.root.get("/health", headers=headers))
        if r is not None:
            assert r.status_code == 431, f"{what}: {describe(r)}"
        assert_still_serving(server, what)


# ---------------------------------------------------------------- raw sockets

def raw_exchange(server, payload, wait=5.0, close_write=False):
    """Send raw bytes, return everything the server sends back within `wait`
    seconds (or until it closes the connection)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as s:
        s.sendall(payload)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        chunks, deadline = [], time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def status_of(resp):
    if not resp.startswith(b"HTTP/1."):
        return None
    return int(resp.split(b" ", 2)[1])


def parse_raw(resp):
    """(status, {lower-case header: value}, body) of one raw HTTP response."""
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    return status_of(resp), {k.strip().lower(): v.strip() for k, v in headers.items()}, body


# Garbage that is not HTTP at all: closing the connection is an acceptable answer.
NOT_HTTP = {
    "garbage": b"GARBAGE\r\n\r\n",
    "no-target": b"GET\r\n\r\n",
    "tls-hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    "conflicting-length": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                          b"Content-Length: 7\r\n\r\n{}",
}
# Well-formed request lines with one bad part: these deserve a normal error
# response (JSON, X-Request-ID, security headers), sent exactly once.
BAD_HTTP = {
    "bad-version": b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    "header-no-colon": b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHeader\r\n\r\n",
    "negative-length": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "alpha-length": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "huge-length": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 99999999999999999999\r\n\r\n",
    "nul-in-path": b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("name", list(NOT_HTTP))
def test_non_http_input_never_crashes(server, name):
    status = status_of(raw_exchange(server, NOT_HTTP[name], wait=3))
    assert status is None or (400 <= status < 600 and status != 500), status
    assert_still_serving(server, f"non-HTTP input {name!r}")


def check_bad_http(server, check):
    """Send every BAD_HTTP payload; `check(status, headers, raw)` returns a
    list of problems. Fails listing every payload with problems."""
    failures = []
    for name, payload in BAD_HTTP.items():
        resp = raw_exchange(server, payload, wait=3)
        status, headers, _ = parse_raw(resp)
        problems = check(status, headers, resp)
        if problems:
            failures.append(f"[case {name}] {problems}\n  >>> {payload[:120]!r}\n"
                            f"  <<< {resp[:600]!r}")
    assert not failures, "\n\n".join(failures)


# libmicrohttpd 0.9.75 (Debian 12) answers these protocol errors itself,
# before any application code runs: with its own HTML page, without our
# headers, and for a malformed Content-Length with the status line and
# headers written twice. Nothing in iotflowd can change that answer; the
# connection is closed right after it. strict=True: when the library is
# fixed, these start passing and the marker must go.
LIBMHD_ERROR_PAGES = pytest.mark.xfail(
    strict=True, reason="libmicrohttpd 0.9.75 writes its own protocol-error responses")


@LIBMHD_ERROR_PAGES
def test_protocol_errors_get_exactly_one_response(server):
    def check(status, headers, resp):
        problems = []
        if status is None or not (400 <= status < 600) or status == 500:
            problems.append(f"status {status}")
        if resp.count(b"HTTP/1.1 ") + resp.count(b"HTTP/1.0 ") > 1:
            problems.append("more than one status line in the answer to one request")
        return problems
    check_bad_http(server, check)


@LIBMHD_ERROR_PAGES
def test_protocol_errors_are_json_with_standard_headers(server):
    def check(status, headers, resp):
        problems = [] if "application/json" in headers.get("content-type", "") \
            else ["body is not JSON"]
        return problems + [f"no {h} header" for h in
                           ("x-request-id", "x-content-type-options", "x-frame-options")
                           if h not in headers]
    check_bad_http(server, check)


def test_expect_100_continue(server):
    """curl sends 'Expect: 100-continue' for bodies over 1 KiB."""
    name = unique("cont")
    body = json.dumps({"username": name, "email": f"{name}@example.com",
                       "password": "secret-pw", "pad": "p" * 2000}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100"), interim[:300]
        sock.sendall(body)
        resp = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            resp += chunk
    final = resp[resp.find(b"HTTP/1.1 2"):] if b"HTTP/1.1 2" in resp else resp
    assert status_of(final) == 201, resp[:600]


def test_duplicate_json_keys_never_crash(server):
    name = unique("dup")
    raw = ('{"username": "%s", "username": "%s2", "email": "%s@example.com", '
           '"password": "secret-pw"}' % (name, name, name))
    r = server.api.post("/auth/register", data=raw)
    assert r.status_code in (201, 400), describe(r)


def test_http10_without_host(server):
    resp = raw_exchange(server, b"GET /health HTTP/1.0\r\n\r\n")
    assert status_of(resp) == 200, resp[:300]


def test_pipelined_requests(server):
    one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = raw_exchange(server, one * 2 + b"GET /health HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\n\r\n", wait=10)
    assert resp.count(b"HTTP/1.1 200") == 3, resp[:2000]


def test_truncated_body_then_close(server):
    resp = raw_exchange(server, b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"user",
                        wait=1, close_write=True)
    # The request never completed: nothing to answer, or a client error.
    status = status_of(resp)
    assert status is None or (400 <= status < 500), resp[:300]
    assert_still_serving(server, "a body cut short by the client")


def test_json_content_type_with_charset(server):
    name = unique("cs")
    r = server.api.post("/auth/register",
                        headers={"Content-Type": "application/json; charset=utf-8"},
                        data=json.dumps({"username": name, "email": f"{name}@example.com",
                                         "password": "secret-pw"}))
    expect(r, 201)


def test_keep_alive_survives_errors(server, ctx):
    """Errors on a persistent connection do not poison the next request."""
    with requests.Session() as s:
        for bad in (b"{", b"[]", b'{"username": 1}'):
            r = s.post(server.base + API + "/auth/login", data=bad, timeout=30,
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 400, describe(r)
            r = s.get(server.base + API + f"/users/{ctx['user'].user_id}",
                      headers=ctx["user"].headers, timeout=30)
            assert r.status_code == 200, describe(r)
        r = s.get(server.base + "/nope", timeout=30)
        assert r.status_code == 404, describe(r)
        assert s.get(server.base + "/health", timeout=30).status_code == 200


def test_keep_alive_session(server, ctx):
    with requests.Session() as s:
        for i in range(30):
            r = s.get(server.base + "/health", timeout=30)
            assert r.status_code == 200
            r = s.get(server.base + API + f"/users/{ctx['user'].user_id}",
                      headers=ctx["user"].headers, timeout=30)
            assert r.status_code == 200, describe(r)


# ---------------------------------------------------------------- concurrency

def test_concurrent_device_registration(server):
    user = make_user(server, "bearer")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(
            lambda i: user.api.post("/devices/register",
                                    json={"name": f"c-{i}", "device_type": "t"}), range(40)))
    devices = [expect(r, 201)["device"] for r in responses]
    assert len({d["id"] for d in devices}) == 40
    assert len({d["api_key"] for d in devices}) == 40
    listed = expect(user.api.get(f"/devices/user/{user.user_id}"), 200)
    assert listed["total_devices"] == 40


def test_concurrent_same_name_only_one_wins(server):
    user = make_user(server, "bearer")
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(
            lambda _: user.api.post("/devices/register",
                                    json={"name": "race", "device_type": "t"}), range(10)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9, [describe(r) for r in responses if r.status_code != 409]


def test_concurrent_membership_and_username_races(server):
    user = make_user(server, "bearer")
    dev, group = register_device(user), create_group(user)
    name = unique("race")
    body = {"username": name, "email": f"{name}@example.com", "password": "secret-pw"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        adds = list(pool.map(lambda _: user.api.post(f"/groups/{group['id']}/devices",
                                                     json={"device_id": dev["id"]}), range(8)))
        regs = list(pool.map(lambda _: server.api.post("/auth/register", json=body), range(8)))
    for responses in (adds, regs):
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [409] * 7, [describe(r) for r in responses if r.status_code != 409]
    got = expect(user.api.get(f"/groups/{group['id']}"), 200)["group"]
    assert got["device_count"] == 1


def test_many_idle_connections(server):
    """100 idle client connections do not starve the server."""
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(100)]
    try:
        for _ in range(3):
            expect(server.root.get("/health"), 200)
    finally:
        for sock in socks:
            sock.close()


def test_concurrent_mixed_traffic(server):
    user = make_user(server, "bearer")
    devs = [register_device(user) for _ in range(5)]

    def work(i):
        d = devs[i % len(devs)]
        calls = [lambda: key_client(server, d["api_key"]).post("/devices/heartbeat"),
                 lambda: user.api.get(f"/devices/{d['id']}/status"),
                 lambda: server.admin.get("/admin/stats"),
                 lambda: server.root.get("/health", params={"detailed": "true"})]
        return calls[i % len(calls)]()

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        for r in pool.map(work, range(120)):
            assert r.status_code == 200, describe(r)


# ---------------------------------------------------------------- rate limits

@pytest.fixture
def limited(start_server):
    return start_server(trust_user_id=True, env={"IOTFLOW_AUTH_RATE_LIMIT": "3"})


def assert_429(r):
    expect_error(r, 429)
    assert_std_headers(r)
    retry = r.headers.get("Retry-After", "")
    assert retry.isdigit() and 0 < int(retry) <= 3600, describe(r)


def test_rate_limit_login(limited):
    _, username, _, password = register_user(limited)
    for _ in range(3):
        expect(login(limited, username, password), 200)
    assert_429(login(limited, username, password))
    expect(limited.root.get("/health"), 200)


def test_rate_limit_counts_failed_logins(limited):
    _, username, _, password = register_user(limited)
    for _ in range(3):
        expect_error(login(limited, username, "wrong-password"), 401)
    assert_429(login(limited, username, password))


def test_rate_limit_registration(limited):
    for _ in range(3):
        register_user(limited)
    name = unique("late")
    assert_429(limited.api.post("/auth/register", json={
        "username": name, "email": f"{name}@example.com", "password": "secret-pw"}))


def test_rate_limit_device_registration(limited):
    uid = register_user(limited)[0]["user_id"]
    client = limited.api.with_headers({"X-User-ID": uid})
    for _ in range(3):
        expect(client.post("/devices/register",
                           json={"name": unique("d"), "device_type": "t"}), 201)
    assert_429(client.post("/devices/register", json={"name": unique("d"), "device_type": "t"}))
    # other endpoints are not throttled
    expect(client.get(f"/users/{uid}"), 200)
    expect(client.get(f"/devices/user/{uid}"), 200)


# ---------------------------------------------------------------- access log

def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_access_log(start_server):
    s = start_server(env={"IOTFLOW_LOG_LEVEL": "info"})
    missing = "/api/v1/nothing-" + uuid.uuid4().hex
    secret_pw = "pw-" + uuid.uuid4().hex
    expect_error(s.root.get(missing), 404)
    expect(s.root.get("/status"), 200)
    expect_error(login(s, unique("ghost"), secret_pw), 401)

    def line_with(*parts):
        return any(all(p in line for p in parts) for line in s.stderr().splitlines())

    for parts in (("GET", missing, "404"), ("GET", "/status", "200"),
                  ("POST", "/api/v1/auth/login", "401")):
        assert wait_for(lambda: line_with(*parts)), (parts, s.stderr()[-3000:])
    assert secret_pw not in s.stderr(), "password written to the log"
    assert s.admin_token not in s.stderr(), "admin token written to the log"


def test_no_access_log_at_warn(start_server):
    s = start_server()
    marker = "/api/v1/quiet-" + uuid.uuid4().hex
    expect_error(s.root.get(marker), 404)
    time.sleep(0.5)
    assert marker not in s.stderr(), s.stderr()[-2000:]


# ---------------------------------------------------------------- lifecycle

def test_clean_shutdown(start_server):
    s = start_server()
    register_user(s)
    s.stop_and_check()


def test_shutdown_with_idle_and_partial_connections(start_server):
    s = start_server()
    idle = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    partial = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    partial.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
    try:
        started = time.monotonic()
        s.stop_and_check()
        assert time.monotonic() - started < 10
    finally:
        idle.close()
        partial.close()


def test_data_survives_restart(start_server):
    s = start_server(trust_user_id=True)
    user = make_user(s, "bearer")
    dev = register_device(user)
    group = create_group(user)
    expect(user.api.post(f"/groups/{group['id']}/devices", json={"device_id": dev["id"]}), 201)
    s.restart()
    token = expect(login(s, user.username, user.password), 200)["token"]
    auth = s.api.with_headers({"Authorization": f"Bearer {token}"})
    data = expect(auth.get(f"/groups/{group['id']}"), 200)["group"]
    assert [d["id"] for d in data["devices"]] == [dev["id"]]
    cred = expect(key_client(s, dev["api_key"]).get("/devices/credentials"), 200)["device"]
    assert cred["id"] == dev["id"]
    expect_error(s.api.post("/auth/register", json={
        "username": user.username, "email": unique("e") + "@x.io", "password": "secret-pw"}), 409)


def test_port_in_use_fails_cleanly(start_server):
    """A second instance on a taken port exits non-zero (no hang, no crash)."""
    first = start_server()
    second = Server()
    env = {**second.env, "IOTFLOW_PORT": str(first.port)}
    second.cleanup()
    proc = None
    try:
        proc = subprocess.run([BINARY], env=env, capture_output=True, timeout=15)
    except subprocess.TimeoutExpired as e:
        hung_stderr = (e.stderr or b"").decode(errors="replace")
    assert proc is not None, (f"second instance on taken port {first.port} did not exit "
                              f"within 15 s (killed); its stderr:\n{hung_stderr}")
    assert proc.returncode not in (0, None) and proc.returncode > 0, proc
    assert b"AddressSanitizer" not in proc.stderr, proc.stderr[-2000:]
    expect(first.root.get("/health"), 200)
