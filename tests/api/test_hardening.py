"""Issue "hardening": slow clients, request smuggling, JSON for protocol
errors, CORS, Content-Type checks, trusted proxies, start-up checks. Every
wait here has a deadline; nothing sleeps a fixed time to let the server
catch up."""
import json
import os
import socket
import subprocess
import tempfile
import re
import time

import pytest
import requests

from conftest import API, BINARY, describe, expect, expect_error, unique

START = 10.0


def run_until_exit(env, timeout=START):
    """Runs iotflowd expecting it to refuse to start; returns (rc, stderr)."""
    with tempfile.TemporaryDirectory(prefix="iotflowd-hard-") as d:
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IOTFLOW_HOST": "127.0.0.1",
                "IOTFLOW_PORT": "1", "IOTFLOW_DATA_DIR": os.path.join(d, "data"), **env}
        p = subprocess.run([BINARY], env=full, capture_output=True, timeout=timeout)
        return p.returncode, p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------- start-up checks

def test_short_admin_token_refused():
    rc, err = run_until_exit({"IOTFLOW_ADMIN_TOKEN": "short-token"})
    assert rc == 2, err
    assert "IOTFLOW_ADMIN_TOKEN" in err and "16" in err and "/dev/urandom" in err, err


def test_telemetry_url_password_not_logged():
    rc, err = run_until_exit({"IOTFLOW_TELEMETRY_URL": "nosuch://user:S3cretPW@host/db",
                              "IOTFLOW_ADMIN_TOKEN": ""})
    assert rc != 0, err
    assert "telemetry" in err, err
    assert "S3cretPW" not in err, err


@pytest.mark.parametrize("url", ["redis://:se/Cr3tPW@127.0.0.1:1/0",
                                 "redis://:se#Cr3tPW@127.0.0.1:1/0",
                                 "redis://:se?Cr3tPW@127.0.0.1:1/0"])
def test_redis_url_password_not_logged(url):
    """A password holding '/', '#' or '?' is still hidden in the error line."""
    rc, err = run_until_exit({"REDIS_URL": url, "IOTFLOW_ADMIN_TOKEN": ""})
    assert rc != 0, err
    assert "cache" in err, err
    assert "Cr3tPW" not in err, err


# ---------------------------------------------------------------- raw sockets

def connect(server, source="127.0.0.1", timeout=5.0):
    """A raw connection; `source` another loopback address (127.0.0.x) makes
    it count as another client."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", server.port))
    return s


def read_until_closed(sock, deadline):
    """Everything the server sends until it closes (or the deadline)."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1]) if lines[0].startswith("HTTP/1.") else None
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def is_closed(sock):
    """True when the server has closed this connection (without blocking)."""
    sock.settimeout(0.0)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, socket.timeout):
        return False
    except OSError:
        return True


def trickle_until_closed(socks, line, every, deadline):
    """Sends `line` on every open socket each `every` seconds (a slowloris
    client); returns {index: seconds until the server closed it}."""
    closed, start = {}, time.monotonic()
    next_send = start
    while len(closed) < len(socks) and time.monotonic() < deadline:
        now = time.monotonic()
        for i, s in enumerate(socks):
            if i in closed:
                continue
            if is_closed(s):
                closed[i] = now - start
                continue
            if now >= next_send:
                try:
                    s.sendall(line)
                except OSError:
                    closed[i] = now - start
        if now >= next_send:
            next_send = now + every
        time.sleep(0.05)
    return closed


# ---------------------------------------------------------------- slow clients (slowloris)

SLOW_ENV = {"IOTFLOW_MAX_CONNECTIONS_PER_IP": "3", "IOTFLOW_HTTP_HEADER_TIMEOUT": "2",
            "IOTFLOW_HTTP_BODY_TIMEOUT": "2"}
# header deadline 2 s + reaper period 0.5 s + scheduling slack on a busy machine
CLOSE_BOUND = 6.0


def test_per_ip_cap_keeps_others_served(start_server):
    srv = start_server(env=SLOW_ENV)
    opened = time.monotonic()
    held = [connect(srv, "127.0.0.2") for _ in range(6)]
    try:
        for s in held:
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass
        # The connections beyond the cap are closed at once, without an answer.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sum(map(is_closed, held)) < 3:
            time.sleep(0.05)
        closed = sum(map(is_closed, held))
        # Past the 2 s header deadline the held three may be closed too
        # (a build as slow as ThreadSanitizer's gets there): then at least.
        if time.monotonic() - opened < 2:
            assert closed == 3, "expected exactly 3 of 6 refused"
        else:
            assert closed >= 3, "expected at least 3 of 6 refused"
        # Another client (another address) is served meanwhile.
        r = requests.get(srv.base + "/health", timeout=5)
        assert r.status_code == 200, describe(r)
    finally:
        for s in held:
            s.close()


def test_trusted_proxy_is_not_capped(start_server):
    """A proxy speaks for many clients: the per-address cap spares it."""
    srv = start_server(env={**SLOW_ENV, "IOTFLOW_TRUSTED_PROXIES": "127.0.0.7"})
    held = [connect(srv, "127.0.0.7") for _ in range(6)]
    try:
        for s in held:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in held:
            s.settimeout(5)
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        assert not any(map(is_closed, held))
    finally:
        for s in held:
            s.close()
    others = [connect(srv, "127.0.0.8") for _ in range(6)]

    def refused():
        """Refusals the log reports (one line per tick: 3 may come as 2 + 1)."""
        return sum(int(n) for n in re.findall(
            r"refused (\d+) connection\(s\) from addresses already holding 3", srv.stderr()))

    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and refused() < 3:
            time.sleep(0.05)
        closed = sum(map(is_closed, others))   # before the 2 s header deadline ends the rest
        assert closed == 3 and refused() == 3, f"{closed} closed\n{srv.stderr()[-2000:]}"
    finally:
        for s in others:
            s.close()


def test_slow_header_is_closed_in_bounded_time(start_server):
    srv = start_server(env=SLOW_ENV)
    slow = [connect(srv, "127.0.0.3") for _ in range(3)]
    try:
        for s in slow:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = trickle_until_closed(slow, b"X-Slow: 1\r\n", 0.5,
                                      time.monotonic() + CLOSE_BOUND + 2)
        assert len(closed) == 3 and max(closed.values()) <= CLOSE_BOUND, closed
        assert min(closed.values()) >= 1.5, f"closed before the deadline: {closed}"
        r = requests.get(srv.base + "/health", timeout=5)
        assert r.status_code == 200, describe(r)
        # The reaper says what it did (its line may follow the close a little).
        said = "whose request header was not complete within 2s"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and said not in srv.stderr():
            time.sleep(0.05)
        assert said in srv.stderr(), srv.stderr()[-2000:]
    finally:
        for s in slow:
            s.close()


def test_slow_body_is_closed_in_bounded_time(start_server):
    srv = start_server(env=SLOW_ENV)
    s = connect(srv, "127.0.0.4")
    try:
        s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        closed = trickle_until_closed([s], b" ", 0.5, time.monotonic() + CLOSE_BOUND + 2)
        assert 0 in closed and 1.5 <= closed[0] <= CLOSE_BOUND, closed
    finally:
        s.close()


def test_idle_keep_alive_then_slow_header_is_closed(start_server):
    """After a complete request the connection waits for the next header
    under the same deadline."""
    srv = start_server(env=SLOW_ENV)
    s = connect(srv, "127.0.0.5")
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /health HTTP/1.1\r\n")
        closed = trickle_until_closed([s], b"X-Slow: 1\r\n", 0.5,
                                      time.monotonic() + CLOSE_BOUND + 2)
        assert 0 in closed and closed[0] <= CLOSE_BOUND, closed
    finally:
        s.close()


def test_idle_keep_alive_outlives_the_header_deadline(start_server):
    """A silent kept-alive connection (a load balancer's pool) is left to the
    60 s idle timeout: the header deadline starts with the next request."""
    srv = start_server(env=SLOW_ENV)
    s = connect(srv, "127.0.0.6")
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        end = time.monotonic() + 2 + CLOSE_BOUND
        while time.monotonic() < end:
            assert not is_closed(s), "idle keep-alive connection closed by the header deadline"
            time.sleep(0.1)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        s.close()


def test_fast_requests_are_not_cut(start_server):
    """A long-running keep-alive client that always completes its requests
    quickly is never closed by the deadlines."""
    srv = start_server(env=SLOW_ENV)
    with requests.Session() as sess:
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            assert sess.get(srv.base + "/health", timeout=5).status_code == 200


# ---------------------------------------------------------------- request smuggling

SMUGGLED = b"GET /api/v1/nope HTTP/1.1\r\nHost: x\r\n\r\n"

SMUGGLING = {
    "two-content-length": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                          b"Content-Length: %d\r\n\r\n{}" % (2 + len(SMUGGLED)) + SMUGGLED,
    "same-content-length-twice": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + SMUGGLED,
    "length-and-chunked": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 4\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "chunked-and-length": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                          b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n" + SMUGGLED,
    "unknown-coding": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + SMUGGLED,
    "two-transfer-encodings": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                              b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"2\r\n{}\r\n0\r\n\r\n" + SMUGGLED,
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_ambiguous_framing_is_400_and_closes(server, name):
    s = connect(server)
    try:
        s.sendall(SMUGGLING[name])
        raw, closed = read_until_closed(s, time.monotonic() + 5)
    finally:
        s.close()
    status, headers, body = parse_response(raw)
    assert status == 400, raw[:600]
    assert "application/json" in headers.get("content-type", ""), raw[:600]
    assert raw.count(b"HTTP/1.1 ") == 1, f"the smuggled request was answered: {raw[:1200]!r}"
    assert headers.get("connection", "").lower() == "close", raw[:600]
    assert headers.get("x-request-id"), raw[:600]
    assert closed, "the connection stayed open after the 400"
    err = json.loads(body[:int(headers["content-length"])])
    assert err["error"] and err["message"], err


# ---------------------------------------------------------------- JSON for size errors

def test_long_uri_is_json_414(server):
    r = requests.get(server.base + "/health?pad=" + "a" * 9000, timeout=10)
    body = expect_error(r, 414)
    assert r.headers.get("X-Request-ID"), describe(r)
    assert "8192" in body["message"], describe(r)


def test_long_encoded_uri_counts_as_sent(server):
    """The limit applies to the target as sent (%20 is three bytes)."""
    r = requests.get(server.base + "/health?pad=" + "%20" * 3000, timeout=10)
    expect_error(r, 414)


def test_uri_under_limit_is_served(server):
    r = requests.get(server.base + "/health?pad=" + "a" * 7000, timeout=10)
    expect(r, 200)


def test_large_header_is_json_431(server):
    r = requests.get(server.base + "/health", headers={"X-Pad": "p" * 9000}, timeout=10)
    expect_error(r, 431)
    r = requests.get(server.base + "/health",
                     headers={f"X-Pad-{i}": "p" * 100 for i in range(90)}, timeout=10)
    expect_error(r, 431)


@pytest.mark.xfail(strict=True, reason="libmicrohttpd 0.9.75 answers a header that does not fit "
                   "its per-connection memory itself, with a fixed HTML page")
def test_header_beyond_library_memory_is_json(server):
    r = requests.get(server.base + "/health", headers={"X-Pad": "p" * 40000}, timeout=10)
    assert r.status_code == 431, describe(r)  # holds today: the status is right
    expect_error(r, 431)                       # fails today: the body is HTML


def test_header_under_limit_is_served(server):
    r = requests.get(server.base + "/health", headers={"X-Pad": "p" * 6000}, timeout=10)
    expect(r, 200)


# ---------------------------------------------------------------- Content-Type

def register_body():
    name = unique("ct")
    return {"username": name, "email": f"{name}@example.com", "password": "secret-pw"}


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/jsonx",
                                   "application/xml", "json"])
def test_other_content_type_is_415(server, ctype):
    r = server.api.post("/auth/register", data=json.dumps(register_body()),
                        headers={"Content-Type": ctype})
    body = expect_error(r, 415)
    assert body["error"] == "Unsupported Media Type", describe(r)


@pytest.mark.parametrize("ctype", ["application/json", "Application/JSON; charset=UTF-8",
                                   "application/vnd.api+json", "application/merge-patch+json"])
def test_json_content_types_are_accepted(server, ctype):
    r = server.api.post("/auth/register", data=json.dumps(register_body()),
                        headers={"Content-Type": ctype})
    expect(r, 201)


def test_no_content_type_is_accepted(server):
    """Firmware sends bodies without a Content-Type."""
    r = requests.post(server.base + API + "/auth/register",
                      data=json.dumps(register_body()).encode(), timeout=10)
    assert "Content-Type" not in r.request.headers
    expect(r, 201)


# ---------------------------------------------------------------- CORS

def test_cors_default_allows_any_origin(server):
    r = requests.get(server.base + "/health", headers={"Origin": "https://x.example"}, timeout=10)
    assert r.headers.get("Access-Control-Allow-Origin") == "*", describe(r)
    exposed = r.headers.get("Access-Control-Expose-Headers", "")
    assert "X-Request-ID" in exposed and "Retry-After" in exposed, describe(r)
    assert "Access-Control-Allow-Credentials" not in r.headers, describe(r)
    r = server.api.get("/nope")
    assert r.status_code == 404 and r.headers.get("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize("path,methods", [
    ("/auth/login", {"POST"}), ("/devices/7/status", {"GET"}),
    ("/groups/3", {"GET", "PUT", "DELETE"}), ("/telemetry", {"POST"})])
def test_cors_preflight(server, path, methods):
    r = requests.options(server.base + API + path, timeout=10, headers={
        "Origin": "https://dash.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status_code == 204, describe(r)
    assert r.content == b"", describe(r)
    allowed = {m.strip() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")}
    assert methods | {"OPTIONS"} == allowed, describe(r)
    hdrs = {h.strip().lower() for h in r.headers.get("Access-Control-Allow-Headers", "").split(",")}
    assert {"authorization", "x-api-key", "content-type", "x-request-id", "x-user-id"} <= hdrs
    assert int(r.headers.get("Access-Control-Max-Age", "0")) > 0, describe(r)
    assert r.headers.get("Access-Control-Allow-Origin") == "*", describe(r)
    assert r.headers.get("X-Request-ID"), describe(r)


def test_cors_preflight_unknown_route_is_404(server):
    r = requests.options(server.base + API + "/nope", timeout=10,
                         headers={"Origin": "https://dash.example"})
    expect_error(r, 404)


def test_cors_origin_list(start_server):
    srv = start_server(env={"CORS_ORIGINS": "https://a.example, http://localhost:3000/"})
    for origin in ("https://a.example", "http://localhost:3000"):
        r = requests.get(srv.base + "/health", headers={"Origin": origin}, timeout=10)
        assert r.headers.get("Access-Control-Allow-Origin") == origin, describe(r)
        assert "Origin" in r.headers.get("Vary", ""), describe(r)
    r = requests.get(srv.base + "/health", headers={"Origin": "https://evil.example"},
                     timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers, describe(r)
    assert "Origin" in r.headers.get("Vary", ""), describe(r)
    r = requests.options(srv.base + API + "/auth/login", timeout=10,
                         headers={"Origin": "https://evil.example"})
    assert r.status_code == 204 and "Access-Control-Allow-Origin" not in r.headers, describe(r)


def test_cors_our_variable_wins(start_server):
    srv = start_server(env={"CORS_ORIGINS": "https://a.example",
                            "IOTFLOW_CORS_ORIGINS": "https://b.example"})
    r = requests.get(srv.base + "/health", headers={"Origin": "https://a.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers, describe(r)
    r = requests.get(srv.base + "/health", headers={"Origin": "https://b.example"}, timeout=10)
    assert r.headers.get("Access-Control-Allow-Origin") == "https://b.example", describe(r)


# ---------------------------------------------------------------- trusted proxies

def login_attempts(srv, forwarded_for):
    statuses = []
    for xff in forwarded_for:
        r = srv.api.post("/auth/login", json={"username": "nobody", "password": "x"},
                         headers={"X-Forwarded-For": xff})
        statuses.append(r.status_code)
    return statuses


def test_forged_forwarded_for_from_untrusted_peer_is_ignored(start_server):
    srv = start_server(env={"IOTFLOW_AUTH_RATE_LIMIT": "3", "IOTFLOW_TRUSTED_PROXIES": "10.9.9.9"})
    statuses = login_attempts(srv, [f"198.51.100.{i}" for i in range(6)])
    assert statuses[:3] == [401] * 3 and statuses[3:] == [429] * 3, statuses


def test_trusted_proxy_forwards_the_client(start_server):
    srv = start_server(env={"IOTFLOW_AUTH_RATE_LIMIT": "3",
                            "IOTFLOW_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    # Each client has its own bucket; left entries (forgeable) do not count.
    statuses = login_attempts(srv, [f"6.6.6.6, 198.51.100.{i}" for i in range(6)])
    assert statuses == [401] * 6, statuses
    statuses = login_attempts(srv, ["203.0.113.7, 10.1.2.3"] * 4)
    assert statuses == [401, 401, 401, 429], statuses


def raw_login(srv, xff_lines):
    """A login with each of xff_lines as its own X-Forwarded-For line."""
    body = b'{"username": "nobody", "password": "x"}'
    head = "".join(f"X-Forwarded-For: {x}\r\n" for x in xff_lines)
    s = connect(srv)
    try:
        s.sendall((f"POST {API}/auth/login HTTP/1.1\r\nHost: x\r\n{head}"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                   "Connection: close\r\n\r\n").encode() + body)
        raw, _ = read_until_closed(s, time.monotonic() + 10)
    finally:
        s.close()
    return parse_response(raw)[0]


def test_repeated_forwarded_for_lines_are_one_list(start_server):
    """RFC 9110 5.3: two lines mean "a, b"; the last line alone is not the list."""
    srv = start_server(env={"IOTFLOW_AUTH_RATE_LIMIT": "3",
                            "IOTFLOW_TRUSTED_PROXIES": "127.0.0.1"})
    statuses = [raw_login(srv, [f"198.51.100.{i}", "127.0.0.1"]) for i in range(6)]
    assert statuses == [401] * 6, statuses
    # In order: the right-most untrusted entry counts, whichever line holds it.
    statuses = [raw_login(srv, [f"198.51.100.{i}", "203.0.113.7"]) for i in range(4)]
    assert statuses == [401, 401, 401, 429], statuses


def test_forwarded_for_with_ports(start_server):
    srv = start_server(env={"IOTFLOW_AUTH_RATE_LIMIT": "3",
                            "IOTFLOW_TRUSTED_PROXIES": "127.0.0.1"})
    statuses = [raw_login(srv, [f"198.51.100.{i}:80"]) for i in range(3)]
    statuses += [raw_login(srv, [f"[2001:db8:{i}::1]:443"]) for i in range(3)]
    assert statuses == [401] * 6, statuses
    statuses = [raw_login(srv, [f"203.0.113.9:{1000 + i}"]) for i in range(4)]
    assert statuses == [401, 401, 401, 429], statuses


def test_ipv6_clients_are_limited_by_their_64(start_server):
    """One host holds a whole /64: a new address per guess must not help."""
    srv = start_server(env={"IOTFLOW_AUTH_RATE_LIMIT": "3",
                            "IOTFLOW_TRUSTED_PROXIES": "127.0.0.1"})
    statuses = login_attempts(srv, [f"2001:db8:0:1::{i:x}" for i in range(1, 5)])
    assert statuses == [401, 401, 401, 429], statuses
    # Another /64 is another client; IPv4-mapped is IPv4.
    statuses = login_attempts(srv, ["2001:db8:0:2::1", "::ffff:198.51.100.77"])
    assert statuses == [401, 401], statuses


def test_bad_trusted_proxy_list_refused():
    rc, err = run_until_exit({"IOTFLOW_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"})
    assert rc != 0 and "proxy.example" in err, err


# ---------------------------------------------------------------- log injection

def test_request_path_cannot_forge_log_lines(start_server):
    srv = start_server(env={"IOTFLOW_LOG_LEVEL": "info"})
    forged = "2026-01-01T00:00:00.000Z info  forged"
    r = requests.get(srv.base + "/x%0a" + forged.replace(" ", "%20") + "%1b[2J", timeout=10)
    assert r.status_code == 404
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "\\x1b[2J" not in srv.stderr():
        time.sleep(0.05)
    log = srv.stderr()
    assert "/x\\n" + forged + "\\x1b[2J" in log, log[-2000:]
    assert not any(line.startswith(forged) for line in log.splitlines()), log[-2000:]
    assert "\x1b" not in log
