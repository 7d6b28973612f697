"""/health, /status and /: public, no credentials needed.

Everyone gets the plain answer (status, message, version); the details
(store checks, device counts, threads, uptime) go to the admin only — the
admin token or an is_admin user — unless IOTFLOW_PUBLIC_STATUS=1. Anyone
else asking for details gets the plain answer, never 401/403."""
import time

from conftest import Client, assert_ts, expect, register_device


def admin_root(server):
    """The server's root (no /api/v1 prefix) with the admin token."""
    return Client(server.base, "", server.admin_headers, server=server)


def assert_plain(data):
    assert set(data) == {"status", "message", "version"}, data
    assert data["status"] == "healthy", data


def assert_detailed(data):
    assert data["status"] in ("healthy", "degraded", "unhealthy"), data
    assert_ts(data["timestamp"])
    assert isinstance(data["version"], str) and data["version"]
    assert isinstance(data["uptime_seconds"], (int, float)) and data["uptime_seconds"] >= 0
    for store in ("database", "cache"):
        assert data["checks"][store]["healthy"] is True, data["checks"]
    assert isinstance(data["metrics"]["devices"], dict)


def test_health(server):
    data = expect(server.root.get("/health"), 200)
    assert data["status"] == "healthy"
    assert isinstance(data["message"], str) and data["message"]
    assert isinstance(data["version"], str) and data["version"]


def test_health_not_detailed(server):
    for value in ("false", "no", "0", ""):
        data = expect(server.root.get("/health", params={"detailed": value}), 200)
        assert data["status"] == "healthy" and "checks" not in data, (value, data)


def test_health_detailed(server):
    for value in ("true", "True", "TRUE"):
        data = expect(admin_root(server).get("/health", params={"detailed": value}), 200)
        assert_detailed(data)
        assert data["status"] == "healthy"


def test_status(server):
    assert_detailed(expect(admin_root(server).get("/status"), 200))


def test_uptime_grows(server):
    first = expect(admin_root(server).get("/status"), 200)["uptime_seconds"]
    # Uptime is measured in microseconds and reported as a real: it moves
    # between two requests; polled with a deadline rather than slept for.
    deadline, now = time.monotonic() + 10, first
    while now <= first and time.monotonic() < deadline:
        time.sleep(0.01)
        now = expect(admin_root(server).get("/status"), 200)["uptime_seconds"]
    assert now > first, (first, now)


def test_status_device_metrics_move(server, bearer_users):
    def total():
        devices = expect(admin_root(server).get("/status"), 200)["metrics"]["devices"]
        assert isinstance(devices.get("total_devices"), int), devices
        return devices["total_devices"]

    # Counted from the registry at each request: exact, no waiting.
    before = total()
    register_device(bearer_users.new())
    assert total() == before + 1


def test_root(server):
    data = expect(server.root.get("/"), 200)
    for k in ("name", "version", "description"):
        assert isinstance(data[k], str) and data[k], k
    assert data["endpoints"], data
    text = str(data["endpoints"])
    assert "/health" in text and "/api/v1" in text
    # The ones a client reaches as they are, are there.
    ends = data["endpoints"]
    r = server.root.get(ends["metrics"], headers=server.admin_headers)
    assert r.status_code == 200 and "iotflow_build_info" in r.text
    for name in ("events", "alerts", "alert_rules"):
        expect(server.admin.get(ends[name][len("/api/v1"):]), 200)
    r = server.root.get(ends["dashboard"], headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


def test_public_endpoints_ignore_bad_credentials(server):
    for path in ("/health", "/status", "/"):
        expect(server.root.get(path, headers={"Authorization": "Bearer nonsense",
                                              "X-API-Key": "nonsense"}), 200)


def test_health_versions_agree(server):
    versions = {expect(server.root.get(p), 200)["version"] for p in ("/health", "/")}
    assert len(versions) == 1, versions


def test_details_only_for_the_admin(server, bearer_users):
    """Anyone else asking for details gets the plain answer."""
    plain_user = bearer_users.new()
    callers = {"anonymous": server.root,
               "user": Client(server.base, "", plain_user.headers, server=server),
               "bad-admin-token": Client(server.base, "", {"Authorization": "admin nope"},
                                         server=server),
               "bad-bearer": Client(server.base, "", {"Authorization": "Bearer nope"},
                                    server=server)}
    for label, client in callers.items():
        for path, params in (("/health", {"detailed": "true"}), ("/status", None)):
            data = expect(client.get(path, params=params), 200)
            assert "checks" not in data and "metrics" not in data, (label, path, data)
            assert_plain(data)


def test_details_for_an_admin_user(server, admin_user):
    client = Client(server.base, "", admin_user.headers, server=server)
    assert_detailed(expect(client.get("/status"), 200))
    assert_detailed(expect(client.get("/health", params={"detailed": "true"}), 200))


def test_public_status_option(start_server):
    s = start_server(env={"IOTFLOW_PUBLIC_STATUS": "1"})
    assert_detailed(expect(s.root.get("/status"), 200))
    assert_detailed(expect(s.root.get("/health", params={"detailed": "true"}), 200))
    assert_plain(expect(s.root.get("/health"), 200))
