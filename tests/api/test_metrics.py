"""GET /metrics: the Prometheus text exposition of iotflowd's metrics.

Admin only by default (the admin token or an is_admin user; 401 without
credentials, 403 for a plain user), anyone's with IOTFLOW_METRICS=public.
The counters move with requests and ingest; Debian's promtool accepts the
real output, and Debian's Prometheus server scrapes it. promtool and
prometheus come from scripts/deps.sh: their absence fails these tests."""
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

from conftest import (BINARY, SERVER_BACKENDS, TEST_CASSANDRA, Client, expect, expect_error,
                      free_port, key_client, make_user, register_device)

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
# The backends of this pass of the suite (make test runs three).
TELEMETRY_BACKEND = "cassandra" if TEST_CASSANDRA else "sqlite"
REGISTRY_BACKEND = "postgres" if SERVER_BACKENDS else "sqlite"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def root(server, headers=None):
    return Client(server.base, "", headers or {}, server=server)


def parse(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(server, headers=None):
    r = root(server, headers).get("/metrics")
    assert r.status_code == 200, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"] == EXPOSITION, r.headers
    return r.text


def test_admin_only_by_default(server, bearer_users, admin_user):
    expect_error(root(server).get("/metrics"), 401)
    user = bearer_users.new()
    expect_error(root(server, user.headers).get("/metrics"), 403)
    assert "iotflow_build_info" in scrape(server, server.admin_headers)
    assert "iotflow_build_info" in scrape(server, admin_user.headers)


def test_public_when_configured(start_server):
    srv = start_server(env={"IOTFLOW_METRICS": "public"})
    assert "iotflow_build_info" in scrape(srv)


def test_bad_setting_refused():
    p = subprocess.run([BINARY], env={"IOTFLOW_METRICS": "everyone"}, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    assert p.returncode != 0 and b"IOTFLOW_METRICS" in p.stderr, p


def test_counters_move(server, bearer_users):
    admin = server.admin_headers
    before = parse(scrape(server, admin))
    owner = bearer_users.new()
    dev = register_device(owner)
    device = key_client(server, dev["api_key"])
    for i in range(3):
        expect(device.post("/telemetry", json={"data": {"t": 20 + i, "h": 50}}), 201)
    expect(device.post("/telemetry/batch", json=[{"data": {"t": 1}}, {"data": {"t": 2}}]), 201)
    expect(owner.api.get(f"/telemetry/{dev['id']}/latest"), 200)
    expect(owner.api.get(f"/telemetry/{dev['id']}/latest"), 200)
    expect_error(root(server).get("/no/such/path"), 404)
    after = parse(scrape(server, admin))

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("iotflow_http_requests_total", method="POST", route="/api/v1/telemetry",
                 status="201") == 3
    assert moved("iotflow_http_requests_total", method="GET", route="other", status="404") == 1
    assert moved("iotflow_http_request_duration_seconds_count", route="/api/v1/telemetry") == 3
    assert moved("iotflow_ingest_messages_stored_total") == 5
    assert moved("iotflow_ingest_points_stored_total") == 8
    assert moved("iotflow_ingest_commits_total") >= 1
    assert moved("iotflow_ingest_commit_duration_seconds_count") >= 1
    # The key is looked up once per device request; the first misses the
    # cache (and fills it: later ones hit until IOTFLOW_KEY_CACHE_TTL_MS).
    assert moved("iotflow_cache_lookups_total", cache="api_key", result="miss") >= 1
    assert moved("iotflow_cache_lookups_total", cache="api_key", result="hit") >= 1
    assert (moved("iotflow_cache_lookups_total", cache="api_key", result="hit")
            + moved("iotflow_cache_lookups_total", cache="api_key", result="miss")) == 4
    assert (moved("iotflow_cache_lookups_total", cache="latest_values", result="hit")
            + moved("iotflow_cache_lookups_total", cache="latest_values", result="miss")) == 2
    assert moved("iotflow_store_operation_duration_seconds_count", store="telemetry",
                 backend=TELEMETRY_BACKEND) >= 1
    assert moved("iotflow_store_operation_duration_seconds_count", store="registry",
                 backend=REGISTRY_BACKEND) >= 1
    assert ("iotflow_store_errors_total",
            frozenset({"store": "registry", "backend": REGISTRY_BACKEND}.items())) in after
    assert value(after, "iotflow_store_errors_total", store="registry",
                 backend=REGISTRY_BACKEND) == 0
    # The alert engine and the event log's writer work after the answer.
    deadline = time.monotonic() + 5
    while True:
        evaluated = value(after, "iotflow_alert_evaluations_total") - value(
            before, "iotflow_alert_evaluations_total")
        written = value(after, "iotflow_events_written_total") - value(
            before, "iotflow_events_written_total")
        if (evaluated >= 5 and written >= 2) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
        after = parse(scrape(server, admin))
    # >= : the shared server's earlier telemetry may be evaluated meanwhile
    assert evaluated >= 5 and written >= 2  # 5 messages; user and device registered
    assert value(after, "iotflow_alert_evaluations_dropped_total") == 0
    assert value(after, "iotflow_events_dropped_total") == 0
    assert value(after, "iotflow_ingest_queue_messages") >= 0
    assert value(after, "iotflow_build_info", version=expect(root(server).get("/health"), 200)
                 ["version"]) == 1
    assert value(after, "iotflow_uptime_seconds") > 0


def test_rate_limit_and_stream_gauge(start_server):
    srv = start_server(env={"IOTFLOW_METRICS": "public", "IOTFLOW_DEVICE_RATE_LIMIT": "1"})
    owner = make_user(srv, "bearer")
    dev = register_device(owner)
    device = key_client(srv, dev["api_key"])
    expect(device.post("/telemetry", json={"data": {"t": 1}}), 201)
    expect_error(device.post("/telemetry", json={"data": {"t": 2}}), 429)
    samples = parse(scrape(srv))
    assert value(samples, "iotflow_rate_limited_total", kind="device_requests") == 1
    assert value(samples, "iotflow_streams_open") == 0
    with owner.api.request("GET", f"/telemetry/{dev['id']}/stream", stream=True) as r:
        assert r.status_code == 200
        deadline = time.monotonic() + 10
        while value(parse(scrape(srv)), "iotflow_streams_open") != 1:
            assert time.monotonic() < deadline, "the open stream was never counted"
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while value(parse(scrape(srv)), "iotflow_streams_open") != 0:
        assert time.monotonic() < deadline, "the closed stream was never given back"
        time.sleep(0.1)


def tool(name):
    path = shutil.which(name)
    assert path, f"{name} is missing: run scripts/deps.sh (Debian package prometheus)"
    return path


def test_promtool_accepts_the_output(server, bearer_users):
    owner = bearer_users.new()
    dev = register_device(owner)
    expect(key_client(server, dev["api_key"]).post("/telemetry", json={"data": {"t": 1}}), 201)
    text = scrape(server, server.admin_headers)
    p = subprocess.run([tool("promtool"), "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def prometheus_query(port, query):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_it(start_server, tmp_path):
    public_server = start_server(env={"IOTFLOW_METRICS": "public"})
    target = urllib.parse.urlsplit(public_server.base).netloc
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: iotflowd\n"
        f"    static_configs:\n      - targets: ['{target}']\n")
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                up = prometheus_query(port, 'up{job="iotflowd"}')
                built = prometheus_query(port, "iotflow_build_info")
                if up and up[0]["value"][1] == "1" and built:
                    break
            except OSError:
                pass  # not listening yet
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.5)
        assert built[0]["metric"]["version"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
