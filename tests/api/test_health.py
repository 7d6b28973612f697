"""/health, /status and / (public, no credentials)."""
import time

from conftest import assert_ts, expect, register_device


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
        data = expect(server.root.get("/health", params={"detailed": value}), 200)
        assert_detailed(data)
        assert data["status"] == "healthy"


def test_status(server):
    assert_detailed(expect(server.root.get("/status"), 200))


def test_uptime_grows(server):
    first = expect(server.root.get("/status"), 200)["uptime_seconds"]
    # Uptime is measured in microseconds and reported as a real: it moves
    # between two requests; polled with a deadline rather than slept for.
    deadline, now = time.monotonic() + 10, first
    while now <= first and time.monotonic() < deadline:
        time.sleep(0.01)
        now = expect(server.root.get("/status"), 200)["uptime_seconds"]
    assert now > first, (first, now)


def test_status_device_metrics_move(server, bearer_users):
    def total():
        devices = expect(server.root.get("/status"), 200)["metrics"]["devices"]
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


def test_public_endpoints_ignore_bad_credentials(server):
    for path in ("/health", "/status", "/"):
        expect(server.root.get(path, headers={"Authorization": "Bearer nonsense",
                                              "X-API-Key": "nonsense"}), 200)


def test_health_versions_agree(server):
    versions = {expect(server.root.get(p), 200)["version"] for p in ("/health", "/")}
    assert len(versions) == 1, versions
