"""Black-box HTTP test harness for iotflowd.

Starts the binary named by $IOTFLOWD (default build/iotflowd) as a subprocess
on a free port with a private data directory, and offers small helpers to
talk to it.  Every response is checked for "never 5xx for client input".
"""
import json as jsonlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("IOTFLOWD", str(ROOT / "build" / "iotflowd"))
TIMEOUT = float(os.environ.get("IOTFLOW_TEST_HTTP_TIMEOUT", "30"))
START_TIMEOUT = float(os.environ.get("IOTFLOW_TEST_START_TIMEOUT", "20"))
STOP_TIMEOUT = 10.0
API = "/api/v1"

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
API_KEY_RE = re.compile(r"^[A-Za-z0-9]{32}$")
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                     "UndefinedBehaviorSanitizer")

USER_FIELDS = {"id", "user_id", "username", "email", "is_active", "is_admin",
               "created_at", "updated_at", "last_login"}
DEVICE_FIELDS = {"id", "name", "description", "device_type", "status",
                 "status_set_by", "location", "firmware_version", "hardware_version", "user_id",
                 "created_at", "updated_at", "last_seen"}
GROUP_FIELDS = {"id", "name", "description", "user_id", "color", "created_at",
                "updated_at", "device_count"}


# --------------------------------------------------------------------------
# Describing requests/responses (used in every assertion message)
# --------------------------------------------------------------------------

def describe(r):
    """One readable block: the exact request and the exact response."""
    req = r.request
    body = req.body
    if isinstance(body, bytes):
        body = body[:600].decode("utf-8", "backslashreplace")
    elif body is not None:
        body = str(body)[:600]
    shown = {k: v for k, v in req.headers.items()
             if k.lower() in ("authorization", "x-user-id", "x-api-key",
                              "content-type", "x-request-id")}
    return (f">>> {req.method} {req.url}\n    headers={shown}\n    body={body!r}\n"
            f"<<< {r.status_code} headers={dict(r.headers)}\n"
            f"    body={r.text[:1200]!r}")


class ServerError(AssertionError):
    pass


def expect(r, *statuses):
    """Assert the status is one of `statuses` and the body is a JSON object."""
    assert r.status_code in statuses, f"expected status {statuses}\n{describe(r)}"
    ctype = r.headers.get("Content-Type", "")
    assert "application/json" in ctype, f"not JSON content-type\n{describe(r)}"
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"body is not valid JSON\n{describe(r)}")
    assert isinstance(body, dict), f"body is not a JSON object\n{describe(r)}"
    return body


def expect_error(r, *statuses):
    """Assert an error response: status, and {"error": str, "message": str}."""
    body = expect(r, *statuses)
    assert isinstance(body.get("error"), str) and body["error"], \
        f"error body lacks 'error' string\n{describe(r)}"
    assert isinstance(body.get("message"), str), \
        f"error body lacks 'message' string\n{describe(r)}"
    return body


def expect_rejects(send, cases, *statuses):
    """Table-driven error checks: `cases` maps a label to an argument for
    `send(arg) -> Response`; every case must be an error with one of
    `statuses`. All cases run; the failure lists every mismatching case."""
    failures = []
    for label, arg in cases.items():
        try:
            expect_error(send(arg), *statuses)
        except AssertionError as e:
            failures.append(f"[case {label}] {e}")
    assert not failures, (f"{len(failures)} of {len(cases)} cases failed:\n\n"
                          + "\n\n".join(failures))


def assert_std_headers(r):
    """Headers every response must carry."""
    assert r.headers.get("X-Request-ID"), f"no X-Request-ID\n{describe(r)}"
    assert r.headers.get("X-Content-Type-Options") == "nosniff", describe(r)
    assert r.headers.get("X-Frame-Options") == "DENY", describe(r)


def error_text(body):
    return (body.get("error", "") + " " + body.get("message", "")).lower()


# --------------------------------------------------------------------------
# Shape checks
# --------------------------------------------------------------------------

def assert_ts(value, nullable=False, what="timestamp"):
    if nullable and value is None:
        return
    assert isinstance(value, str) and TS_RE.match(value), \
        f"{what} {value!r} is not ISO-8601 UTC with milliseconds and Z"


def _walk_keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _walk_keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_keys(v)


def assert_no_secrets(r, *secrets_):
    """No password/hash fields anywhere, and none of `secrets_` in the text."""
    body = r.json()
    bad = [k for k in _walk_keys(body) if "password" in k.lower() or "hash" in k.lower()]
    assert not bad, f"response exposes {bad}\n{describe(r)}"
    for s in secrets_:
        if s:
            assert s not in r.text, f"response leaks secret {s!r}\n{describe(r)}"


def assert_user_dict(u, **expected):
    assert isinstance(u, dict)
    missing = USER_FIELDS - set(u)
    assert not missing, f"user dict lacks {missing}: {u}"
    assert isinstance(u["id"], int) and not isinstance(u["id"], bool)
    assert HEX32_RE.match(u["user_id"]), f"user_id {u['user_id']!r} not 32 lowercase hex"
    assert isinstance(u["is_active"], bool) and isinstance(u["is_admin"], bool)
    assert_ts(u["created_at"], what="created_at")
    assert_ts(u["updated_at"], what="updated_at")
    assert_ts(u["last_login"], nullable=True, what="last_login")
    for k, v in expected.items():
        assert u[k] == v, f"user[{k!r}] = {u[k]!r}, expected {v!r}"


def assert_device_dict(d, **expected):
    assert isinstance(d, dict)
    missing = DEVICE_FIELDS - set(d)
    assert not missing, f"device dict lacks {missing}: {d}"
    assert isinstance(d["id"], int) and not isinstance(d["id"], bool)
    assert isinstance(d["user_id"], int) and not isinstance(d["user_id"], bool), \
        f"device user_id must be the owner's internal integer id: {d['user_id']!r}"
    assert d["status"] in ("active", "inactive", "maintenance"), d["status"]
    assert d["status_set_by"] in ("new", "device", "admin"), d["status_set_by"]
    assert_ts(d["created_at"], what="created_at")
    assert_ts(d["updated_at"], what="updated_at")
    assert_ts(d["last_seen"], nullable=True, what="last_seen")
    for k, v in expected.items():
        assert d[k] == v, f"device[{k!r}] = {d[k]!r}, expected {v!r}"


def assert_group_dict(g, **expected):
    missing = GROUP_FIELDS - set(g)
    assert not missing, f"group dict lacks {missing}: {g}"
    assert isinstance(g["id"], int)
    assert isinstance(g["device_count"], int)
    assert_ts(g["created_at"], what="created_at")
    assert_ts(g["updated_at"], what="updated_at")
    for k, v in expected.items():
        assert g[k] == v, f"group[{k!r}] = {g[k]!r}, expected {v!r}"


def unique(prefix="u"):
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------

_UNSET = object()


class Client:
    """Thin wrapper over requests: prefixes the base URL, applies default
    headers, uses generous timeouts and refuses any 5xx answer."""

    def __init__(self, base, prefix="", headers=None, server=None):
        self.base, self.prefix, self.server = base, prefix, server
        self.headers = dict(headers or {})

    def with_headers(self, headers):
        return Client(self.base, self.prefix, {**self.headers, **headers}, self.server)

    def request(self, method, path, *, headers=None, json=_UNSET, data=None,
                params=None, allow_5xx=False, **kw):
        h = {**self.headers, **(headers or {})}
        if json is not _UNSET:
            data = jsonlib.dumps(json).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(data, str):
            data = data.encode()
            h.setdefault("Content-Type", "application/json")
        url = self.base + self.prefix + path
        try:
            r = requests.request(method, url, headers=h, data=data, params=params,
                                 timeout=TIMEOUT, allow_redirects=False, **kw)
        except requests.ConnectionError:
            srv = self.server
            if srv is not None:
                try:
                    srv.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
                if not srv.alive():
                    raise ServerError(
                        f"server died (exit {srv.proc.returncode}) handling {method} {url} "
                        f"headers={h} body={(data or b'')[:300]!r}\n"
                        f"stderr tail:\n{srv.stderr()[-2000:]}") from None
            raise
        if r.status_code >= 500 and not allow_5xx:
            raise ServerError(f"server answered {r.status_code} to client input\n{describe(r)}")
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# Server backends: the embedded stores, or PostgreSQL + Redis
# --------------------------------------------------------------------------

# Set by `make test` for the second pass of this suite (scripts/services.sh
# started the servers): every iotflowd then runs on PostgreSQL + Redis.
TEST_DATABASE_URL = os.environ.get("IOTFLOW_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("IOTFLOW_TEST_REDIS_URL", "")
# The third pass of make test: telemetry on this Cassandra ("host:port",
# credentials in the URL's form "user:pass@host:port"), a keyspace per namespace.
TEST_CASSANDRA = os.environ.get("IOTFLOW_TEST_CASSANDRA", "")
# And documents on this MongoDB-protocol server (FerretDB in make test),
# "mongodb://host:port" plus anything after the database: a database per
# namespace. FerretDB keeps each in a small file of its own, removed with
# the service's data.
TEST_MONGODB_URL = os.environ.get("IOTFLOW_TEST_MONGODB_URL", "")
SERVER_BACKENDS = bool(TEST_DATABASE_URL and TEST_REDIS_URL)


def _with_param(url, param):
    return url + ("&" if "?" in url else "?") + param


def psql(url, sql):
    """Run SQL on the test PostgreSQL (Debian's psql client)."""
    out = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"psql failed: {out.stderr}"
    return out.stdout


def fresh_backends():
    """The environment of a new, empty namespace on the test servers: a
    PostgreSQL schema of its own (first on the search_path) and a Redis key
    prefix of its own. Instances given the same dict share their state, as
    instances behind one load balancer do. {} in the embedded pass."""
    if not SERVER_BACKENDS:
        return {}
    name = "t_" + uuid.uuid4().hex[:16]
    psql(TEST_DATABASE_URL, f"CREATE SCHEMA {name}")
    env = {"DATABASE_URL": _with_param(TEST_DATABASE_URL, f"options=-csearch_path%3D{name}"),
           "REDIS_URL": _with_param(TEST_REDIS_URL, f"prefix={name}:")}
    if TEST_CASSANDRA:
        env["IOTFLOW_TELEMETRY_URL"] = f"cassandra://{TEST_CASSANDRA}/{name}?replication=1"
        _KEYSPACES.append(name)
    if TEST_MONGODB_URL:
        env["MONGODB_URL"] = _mongodb_url_for(name)
    return env


def _mongodb_url_for(database):
    """TEST_MONGODB_URL with its database replaced by `database`."""
    scheme, rest = TEST_MONGODB_URL.split("://", 1)
    hosts, _, tail = rest.partition("/")
    query = tail.partition("?")[2]
    return f"{scheme}://{hosts}/{database}" + (f"?{query}" if query else "")


# Keyspaces the Cassandra pass made: each is ~12 tables, and a node with
# hundreds of them answers schema changes slowly, so each goes as soon as
# its servers are done (drop_namespace), the rest at the end of the run.
_KEYSPACES = []
_cql_session = None


def drop_namespace(backends):
    """Drop the Cassandra keyspace of a namespace fresh_backends() made."""
    url = backends.get("IOTFLOW_TELEMETRY_URL", "")
    if not url.startswith("cassandra://"):
        return
    name = url.rsplit("/", 1)[1].split("?")[0]
    global _cql_session
    if _cql_session is None:
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import Cluster
        creds, hostport = TEST_CASSANDRA.rsplit("@", 1)
        user, password = creds.split(":", 1)
        host, port = hostport.rsplit(":", 1)
        cluster = Cluster([host], port=int(port), protocol_version=4,
                          auth_provider=PlainTextAuthProvider(user, password))
        _cql_session = cluster.connect()
        _cql_session.default_timeout = 60
    _cql_session.execute(f'DROP KEYSPACE IF EXISTS "{name}"')
    if name in _KEYSPACES:
        _KEYSPACES.remove(name)


def pytest_sessionfinish(session, exitstatus):
    for name in list(_KEYSPACES):
        drop_namespace({"IOTFLOW_TELEMETRY_URL": f"cassandra://x/{name}"})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *, trust_user_id=False, admin_token=_UNSET, env=None,
                 data_dir=None, backends=None):
        self.workdir = Path(tempfile.mkdtemp(prefix="iotflowd-test-"))
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.admin_token = secrets.token_hex(16) if admin_token is _UNSET else admin_token
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "IOTFLOW_HOST": "127.0.0.1",
            "IOTFLOW_DATA_DIR": str(self.data_dir),
            "IOTFLOW_AUTH_RATE_LIMIT": "0",
            "IOTFLOW_ADMIN_FAIL_LIMIT": "0",
            "IOTFLOW_LOG_LEVEL": "warn",
            # Every test client connects from 127.0.0.1, so the per-address
            # cap would count the whole suite as one client;
            # test_hardening.py sets it where it is the subject.
            "IOTFLOW_MAX_CONNECTIONS_PER_IP": "0",
        }
        # sanitizer settings, and the event loop the server run picks
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS",
                  "IOTFLOW_HTTP_EPOLL"):
            if k in os.environ:
                self.env[k] = os.environ[k]
        if self.admin_token is not None:
            self.env["IOTFLOW_ADMIN_TOKEN"] = self.admin_token
        if trust_user_id:
            self.env["IOTFLOW_TRUST_USER_ID_HEADER"] = "1"
        self.owns_backends = backends is None
        self.backends = fresh_backends() if backends is None else backends
        self.env.update(self.backends)
        self.env.update(env or {})
        self.proc = None
        self.cache = {}          # per-incarnation memo (shared users etc.)
        self.extra_dirs = []
        self.stderr_path = self.workdir / "stderr.log"
        self.stdout_path = self.workdir / "stdout.log"
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        if not os.access(BINARY, os.X_OK):
            pytest.fail(f"iotflowd binary not found or not executable: {BINARY}")
        last = ""
        for _attempt in range(3):
            self.port = free_port()
            self.env["IOTFLOW_PORT"] = str(self.port)
            self.base = f"http://127.0.0.1:{self.port}"
            self.starts += 1
            err_name = self.workdir / f"stderr.{self.starts}.log"
            self.stderr_path = err_name
            self.proc = subprocess.Popen(
                [BINARY], env=self.env, stdin=subprocess.DEVNULL,
                stdout=open(self.stdout_path, "ab"), stderr=open(err_name, "wb"))
            if self._wait_healthy():
                return self
            last = self.stderr()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                break
        pytest.fail(f"iotflowd did not become healthy within {START_TIMEOUT}s "
                    f"(rc={self.proc.returncode}); stderr:\n{last[-4000:]}")

    def _wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if requests.get(self.base + "/health", timeout=2).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        """SIGTERM, wait; returns (exit code or None on timeout, stderr)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), self.stderr()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        return rc, self.stderr()

    def stop_and_check(self):
        rc, err = self.stop()
        problems = [m for m in SANITIZER_MARKERS if m in err]
        assert rc == 0 and not problems, (
            f"unclean shutdown: rc={rc} (None = did not exit within "
            f"{STOP_TIMEOUT}s of SIGTERM), sanitizer markers={problems}\n"
            f"stderr tail:\n{err[-4000:]}")

    def restart(self):
        self.stop_and_check()
        return self.start()

    def cleanup(self):
        """Remove the scratch directories (only call once the process is gone)
        and the Cassandra keyspace of a namespace of its own."""
        for d in [self.workdir, *self.extra_dirs]:
            shutil.rmtree(d, ignore_errors=True)
        if self.owns_backends:
            drop_namespace(self.backends)

    def revive(self):
        """Replace a crashed instance by a fresh one on a new, empty data
        directory (so one crash does not cascade through the whole suite)."""
        scratch = Path(tempfile.mkdtemp(prefix="iotflowd-revived-"))
        self.extra_dirs.append(scratch)
        self.data_dir = scratch / "data"
        self.data_dir.mkdir(parents=True)
        self.env["IOTFLOW_DATA_DIR"] = str(self.data_dir)
        self.backends = fresh_backends()
        self.env.update(self.backends)
        self.cache = {}
        return self.start()

    def memo(self, key, factory):
        """factory() once per server incarnation."""
        if key not in self.cache:
            self.cache[key] = factory()
        return self.cache[key]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- clients -------------------------------------------------------------
    @property
    def root(self):
        return Client(self.base, server=self)

    @property
    def api(self):
        return Client(self.base, API, server=self)

    @property
    def admin_headers(self):
        return {"Authorization": f"admin {self.admin_token}"}

    @property
    def admin(self):
        return Client(self.base, API, self.admin_headers, server=self)


# --------------------------------------------------------------------------
# Users and devices
# --------------------------------------------------------------------------

@dataclass
class User:
    server: Server
    mode: str
    info: dict
    username: str
    email: str
    password: str
    token: str = None
    headers: dict = field(default_factory=dict)

    @property
    def id(self):
        return self.info["id"]

    @property
    def user_id(self):
        return self.info["user_id"]

    @property
    def api(self):
        """Client authenticated as this user (per auth mode)."""
        return self.server.api.with_headers(self.headers)


def register_user(server, username=None, email=None, password=None):
    username = username or unique("user")
    email = email or f"{username}@example.com"
    password = password or "pw-" + secrets.token_hex(6)
    r = server.api.post("/auth/register",
                        json={"username": username, "email": email, "password": password})
    body = expect(r, 201)
    return body["user"], username, email, password


def login(server, username, password):
    return server.api.post("/auth/login", json={"username": username, "password": password})


def login_token(server, username, password):
    body = expect(login(server, username, password), 200)
    return body["token"]


def make_user(server, mode, **kw):
    info, username, email, password = register_user(server, **kw)
    user = User(server, mode, info, username, email, password)
    if mode == "bearer":
        user.token = login_token(server, username, password)
        user.headers = {"Authorization": f"Bearer {user.token}"}
    else:
        user.headers = {"X-User-ID": info["user_id"]}
    return user


def relogin(user):
    """Refresh a bearer user's token (e.g. after promotion or re-activation)."""
    if user.mode == "bearer":
        user.token = login_token(user.server, user.username, user.password)
        user.headers = {"Authorization": f"Bearer {user.token}"}
    return user


def promote_to_admin(user):
    r = user.server.admin.put(f"/users/{user.user_id}", json={"is_admin": True})
    body = expect(r, 200)
    assert body["user"]["is_admin"] is True, describe(r)
    user.info = body["user"]
    return relogin(user)


def register_device(user, **fields):
    fields.setdefault("name", unique("dev"))
    fields.setdefault("device_type", "sensor")
    r = user.api.post("/devices/register", json=fields)
    return expect(r, 201)["device"]


def key_client(server, api_key):
    return server.api.with_headers({"X-API-Key": api_key})


def create_group(user, **fields):
    fields.setdefault("name", unique("grp"))
    r = user.api.post("/groups", json=fields)
    return expect(r, 201)["group"]


class Factory:
    """users.new() / users.admin_user(): fresh users on one server, one mode."""

    def __init__(self, server, mode):
        self.server, self.mode = server, mode

    def new(self, **kw):
        return make_user(self.server, self.mode, **kw)

    def admin_user(self):
        return promote_to_admin(self.new())


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

def pytest_configure(config):
    # Assertion messages carry the exact request and response; deep
    # tracebacks through requests/urllib3 only hide them.
    if getattr(config.option, "tbstyle", "auto") == "auto":
        config.option.tbstyle = "short"


_SHARED = []


@pytest.fixture(scope="session")
def bearer_server():
    srv = Server().start()
    _SHARED.append(srv)
    yield srv
    srv.stop_and_check()
    srv.cleanup()


@pytest.fixture(scope="session")
def legacy_server():
    srv = Server(trust_user_id=True).start()
    _SHARED.append(srv)
    yield srv
    srv.stop_and_check()
    srv.cleanup()


@pytest.fixture
def server(bearer_server):
    """The default (bearer-mode, trust header off) shared server."""
    return bearer_server


@pytest.fixture(params=["bearer", "legacy"])
def auth_mode(request):
    return request.param


@pytest.fixture
def srv(auth_mode, request):
    """The shared server matching the auth mode under test."""
    name = "bearer_server" if auth_mode == "bearer" else "legacy_server"
    return request.getfixturevalue(name)


@pytest.fixture
def users(srv, auth_mode):
    return Factory(srv, auth_mode)


@pytest.fixture
def user(users):
    return users.new()


@pytest.fixture
def other_user(users):
    return users.new()


@pytest.fixture
def shared_user(srv, auth_mode):
    """One long-lived user per auth mode, for tests that only need *a* user
    (input validation) and do not count or mutate its data."""
    return srv.memo(("user", auth_mode), lambda: make_user(srv, auth_mode))


@pytest.fixture
def admin_user(bearer_server):
    """A long-lived is_admin user (bearer) on the shared bearer server."""
    return bearer_server.memo("admin", lambda: promote_to_admin(make_user(bearer_server, "bearer")))


@pytest.fixture
def bearer_users(bearer_server):
    return Factory(bearer_server, "bearer")


@pytest.fixture
def start_server():
    """Start a private server with special configuration; stopped (and
    checked for a clean exit) at teardown."""
    started = []

    def _start(**kw):
        s = Server(**kw).start()
        started.append(s)
        return s

    yield _start
    for s in started:
        if s.alive():
            s.stop_and_check()
        else:
            rc = s.proc.returncode
            assert rc == 0, f"private server died (exit {rc}); stderr tail:\n{s.stderr()[-3000:]}"
        s.cleanup()


def assert_shared_alive(shared):
    """The shared servers must still be running: a dead one fails the test
    that killed it and is replaced by a fresh instance (tests/mqtt too)."""
    dead = []
    for s in shared:
        if not s.alive():
            dead.append(f"shared server died (exit {s.proc.returncode}); stderr tail:\n"
                        f"{s.stderr()[-3000:]}")
            s.revive()
    assert not dead, "\n".join(dead)


@pytest.fixture(autouse=True)
def _shared_servers_survive():
    """After every test: the shared servers must still be running."""
    yield
    assert_shared_alive(_SHARED)
