"""Analytics reports: POST/GET /devices/{id}/reports, GET /reports/{id},
the daily run (POST /admin/reports/daily, with the server's own thread
turned off by IOTFLOW_DAILY_REPORTS=0) — numbers checked against the
telemetry sent."""
import datetime as dt

import pytest

from conftest import (HEX32_RE, TS_RE, expect, expect_error, expect_rejects, key_client,
                      make_user, register_device)

HOUR = dt.timedelta(hours=1)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def send_batch(server, device, messages):
    body = {"messages": [{"data": data, "timestamp": iso(t)} for t, data in messages]}
    expect(key_client(server, device["api_key"]).post("/telemetry/batch", json=body), 201)


@pytest.fixture
def owner(bearer_users):
    return bearer_users.new()


@pytest.fixture
def t0():
    """An hour boundary three days ago: the period's start."""
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now - dt.timedelta(days=3)


@pytest.fixture
def measured(bearer_server, owner, t0):
    """A device with 4 hours of telemetry from t0, and some outside them."""
    device = register_device(owner)
    m = dt.timedelta(minutes=1)
    send_batch(bearer_server, device, [
        (t0 - HOUR, {"temp": 100, "hum": 1}),              # before the period
        (t0 + 5 * m, {"temp": 20, "hum": 40, "state": "ok"}),
        (t0 + 65 * m, {"temp": 22.5, "hum": 41}),
        (t0 + 125 * m, {"temp": 19, "on": True}),
        (t0 + 185 * m, {"temp": 25, "hum": 45, "on": False}),
        (t0 + 4 * HOUR, {"temp": -100, "hum": 99}),        # at the end: excluded
    ])
    return device


def make_report(user, device, **body):
    return user.api.post(f"/devices/{device['id']}/reports", json=body)


def by_name(report):
    return {m["name"]: m for m in report["measurements"]}


def test_report_numbers(owner, measured, t0):
    r = make_report(owner, measured, start=iso(t0), end=iso(t0 + 4 * HOUR))
    report = expect(r, 201)["report"]
    assert HEX32_RE.match(report["id"]) and report["kind"] == "manual"
    assert report["device_id"] == measured["id"] and report["device_name"] == measured["name"]
    assert report["user_id"] == owner.user_id
    assert report["start"] == iso(t0) and report["end"] == iso(t0 + 4 * HOUR)
    assert TS_RE.match(report["created_at"])
    ms = by_name(report)
    assert set(ms) == {"temp", "hum", "on"}  # strings are not summarised
    temp = ms["temp"]
    assert (temp["count"], temp["min"], temp["max"], temp["first"], temp["last"]) == \
        (4, 19, 25, 20, 25)
    assert temp["mean"] == pytest.approx((20 + 22.5 + 19 + 25) / 4)
    assert temp["first_at"] == iso(t0 + dt.timedelta(minutes=5))
    assert temp["last_at"] == iso(t0 + dt.timedelta(minutes=185))
    hum = ms["hum"]
    assert (hum["count"], hum["min"], hum["max"], hum["first"], hum["last"]) == (3, 40, 45, 40, 45)
    assert isinstance(hum["min"], int) and hum["mean"] == pytest.approx(42.0)
    on = ms["on"]
    assert (on["count"], on["min"], on["max"], on["mean"]) == (2, 0, 1, 0.5)
    assert report["alerts"] == [] and report["alert_count"] == 0
    assert report["alerts_truncated"] is False and report["measurements_truncated"] is False


def test_report_inside_one_hour_and_empty_period(owner, measured, t0):
    r = make_report(owner, measured, start=iso(t0 + dt.timedelta(minutes=60)),
                    end=iso(t0 + dt.timedelta(minutes=70)))
    ms = by_name(expect(r, 201)["report"])
    assert set(ms) == {"temp", "hum"} and ms["temp"]["count"] == 1 and ms["temp"]["min"] == 22.5
    r = make_report(owner, measured, start=iso(t0 - 10 * HOUR), end=iso(t0 - 5 * HOUR))
    assert expect(r, 201)["report"]["measurements"] == []


def test_report_relative_times(owner, measured):
    report = expect(make_report(owner, measured, start="-7d"), 201)["report"]
    assert by_name(report)["temp"]["count"] == 6
    assert TS_RE.match(report["end"])


def test_report_read_and_list(bearer_server, bearer_users, owner, measured, t0):
    made = [expect(make_report(owner, measured, start=iso(t0), end=iso(t0 + k * HOUR)), 201)
            ["report"] for k in (1, 2, 3)]
    r = owner.api.get(f"/reports/{made[0]['id']}")
    assert expect(r, 200)["report"] == made[0]
    assert expect(bearer_server.admin.get(f"/reports/{made[1]['id']}"), 200)["report"] == made[1]
    other = bearer_users.new()
    expect_error(other.api.get(f"/reports/{made[0]['id']}"), 404)
    expect_error(owner.api.get("/reports/" + "0" * 32), 404)
    expect_error(owner.api.get("/reports/bad%20id"), 404)
    expect_error(bearer_server.api.get(f"/reports/{made[0]['id']}"), 401)

    listed = expect(owner.api.get(f"/devices/{measured['id']}/reports"), 200)
    assert [x["id"] for x in listed["reports"]] == [x["id"] for x in reversed(made)]
    assert listed["next_cursor"] is None and listed["count"] == 3
    page = expect(owner.api.get(f"/devices/{measured['id']}/reports", params={"limit": 2}), 200)
    rest = expect(owner.api.get(f"/devices/{measured['id']}/reports",
                                params={"limit": 2, "cursor": page["next_cursor"]}), 200)
    assert [x["id"] for x in page["reports"] + rest["reports"]] == \
        [x["id"] for x in reversed(made)]
    assert rest["next_cursor"] is None
    expect_error(other.api.get(f"/devices/{measured['id']}/reports"), 403)
    expect_error(other.api.post(f"/devices/{measured['id']}/reports", json={"start": "-1d"}), 403)
    assert expect(bearer_server.admin.get(f"/devices/{measured['id']}/reports"), 200)["count"] == 3
    expect_error(owner.api.get("/devices/999999999/reports"), 404)
    expect_error(owner.api.get(f"/devices/{measured['id']}/reports", params={"limit": 101}), 400)


def test_report_bad_input(owner, measured, t0):
    cases = {
        "no-start": {}, "start-null": {"start": None}, "start-int": {"start": 5},
        "start-word": {"start": "last week"}, "end-bad": {"start": "-1d", "end": "2024-02-30"},
        "end-before": {"start": iso(t0), "end": iso(t0 - HOUR)},
        "end-equal": {"start": iso(t0), "end": iso(t0)},
        "too-long": {"start": "2020-01-01", "end": "2021-01-02"},
        "start-long": {"start": "x" * 65},
    }
    expect_rejects(lambda b: make_report(owner, measured, **b), cases, 400)
    expect_error(owner.api.post(f"/devices/{measured['id']}/reports", data="["), 400)
    expect_error(owner.api.post(f"/devices/{measured['id']}/reports", data="[]"), 400)
    ok = make_report(owner, measured, start="2020-01-01", end="2021-01-01")  # 366 days
    expect(ok, 201)


# ---------------------------------------------------------------- daily

def test_daily_reports_idempotent(start_server):
    srv = start_server(env={"IOTFLOW_DAILY_REPORTS": "0"})
    user = make_user(srv, "bearer")
    busy, quiet = register_device(user), register_device(user)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = today - dt.timedelta(days=1)
    send_batch(srv, busy, [(day + k * HOUR, {"v": k}) for k in range(24)] +
               [(today + dt.timedelta(seconds=1), {"v": 1000})])
    date = day.strftime("%Y-%m-%d")
    run = expect(srv.admin.post("/admin/reports/daily", params={"date": date}), 200)
    assert (run["date"], run["devices"], run["made"], run["existing"], run["quiet"],
            run["failed"]) == (date, 2, 1, 0, 1, 0)
    again = expect(srv.admin.post("/admin/reports/daily", params={"date": date}), 200)
    assert (again["made"], again["existing"], again["quiet"]) == (0, 1, 1)
    report = expect(user.api.get(f"/reports/daily:{busy['id']}:{date}"), 200)["report"]
    assert report["kind"] == "daily" and report["start"] == iso(day)
    assert report["end"] == iso(today)
    v = by_name(report)["v"]
    assert (v["count"], v["min"], v["max"], v["first"], v["last"]) == (24, 0, 23, 0, 23)
    listed = expect(user.api.get(f"/devices/{busy['id']}/reports"), 200)["reports"]
    assert [x["id"] for x in listed] == [report["id"]]
    assert expect(user.api.get(f"/devices/{quiet['id']}/reports"), 200)["reports"] == []
    # default: yesterday
    assert expect(srv.admin.post("/admin/reports/daily"), 200)["date"] == date


def test_daily_run_refusals(bearer_server, owner):
    admin = bearer_server.admin
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    cases = {"today": today, "word": "yesterday", "time": "2024-01-01T00:00",
             "bad-day": "2024-02-30", "short": "2024-1-1"}
    expect_rejects(lambda d: admin.post("/admin/reports/daily", params={"date": d}), cases, 400)
    expect_error(owner.api.post("/admin/reports/daily"), 403)
    expect_error(bearer_server.api.post("/admin/reports/daily"), 401)
