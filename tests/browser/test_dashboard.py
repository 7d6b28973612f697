"""The dashboard in a real browser: register and log in through the UI,
register a device, send telemetry with its key over HTTP, and watch the
device page show it — latest values, the live chart, history, aggregates.
Every test fails on a console error, a page error or a CSP violation
(conftest.py)."""
import re
import time

import requests
from playwright.sync_api import expect

from conftest import harness, log_in, register_and_log_in, register_device, shoot

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def send(server, key, **data):
    r = requests.post(f"{server.base}/api/v1/telemetry", json={"data": data},
                      headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 201, harness.describe(r)


def chart_points(page, test):
    return int(page.get_attribute(f"[data-test={test}]", "data-points"))


def test_dashboard_is_served_with_its_policy(web_server):
    r = requests.get(web_server.base + "/", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    # A client asking for JSON (or anything) still gets the description.
    for accept in ("application/json", "*/*", None):
        r = requests.get(web_server.base + "/", headers={"Accept": accept} if accept else {}, timeout=30)
        assert harness.expect(r, 200)["name"].startswith("IoTFlow")
    r = requests.get(web_server.base + "/api/v1", headers={"Accept": "text/html"}, timeout=30)
    assert harness.expect(r, 200)["name"].startswith("IoTFlow")
    # Files revalidate by ETag; unknown ones are a JSON 404.
    r = requests.get(web_server.base + "/ui/js/app.js", timeout=30)
    assert r.status_code == 200 and "javascript" in r.headers["Content-Type"]
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["Content-Security-Policy"] == CSP
    again = requests.get(web_server.base + "/ui/js/app.js", headers={"If-None-Match": r.headers["ETag"]},
                         timeout=30)
    assert again.status_code == 304 and again.content == b""
    harness.expect_error(requests.get(web_server.base + "/ui/js/nope.js", timeout=30), 404)


def test_device_page_shows_telemetry_live(page, web_server):
    response = page.goto("/")
    assert response.headers["content-security-policy"] == CSP
    register_and_log_in(page, harness.unique("web"))
    name = harness.unique("probe")
    key = register_device(page, name)
    shoot(page, "devices-key")

    send(web_server, key, temperature=21.5, humidity=40)
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.locator("[data-test=device-title]")).to_have_text(name)
    temp = page.locator("[data-test=latest-value][data-name=temperature] [data-test=latest-num]")
    expect(temp).to_have_text("21.5")
    expect(page.locator("[data-test=history-chart]")).not_to_have_attribute("data-points", "0")
    expect(page.locator("[data-test=live-state]")).to_have_text("live")

    # Live: each message sent now is a new point on the chart and the
    # newest value in the latest panel. The stream opens a moment after
    # the page: send until the first point arrives, then count exactly.
    deadline = time.monotonic() + 15
    sent = 1
    while chart_points(page, "live-chart") == 0 and time.monotonic() < deadline:
        send(web_server, key, temperature=22.0, humidity=41)
        sent += 1
        page.wait_for_timeout(300)
    before = chart_points(page, "live-chart")
    assert before > 0, "the live chart never received a point"
    for value in (23.25, 24.5, 25.75):
        send(web_server, key, temperature=value, humidity=42)
        sent += 1
    page.wait_for_function(
        f"document.querySelector('[data-test=live-chart]').dataset.points >= {before + 6}")
    expect(temp).to_have_text("25.75")
    shoot(page, "device")
    shoot(page, "device-window", full_page=False)  # docs/images/dashboard.png is one

    # History: the range picker reloads it; every message is a row.
    page.click("[data-test=range-24h]")
    expect(page.locator("[data-test=history-rows] tbody tr")).to_have_count(sent)
    expect(page.locator("[data-test=history-rows] tbody tr").first).to_contain_text("25.75")
    # Aggregates by window, of the measurement chosen.
    page.select_option("[data-test=agg-field]", "temperature")
    page.select_option("[data-test=agg-aggregation]", "max")
    page.select_option("[data-test=agg-window]", "1h")
    expect(page.locator("[data-test=aggregated-rows] tbody tr").first).to_contain_text("25.75")
    expect(page.locator("[data-test=aggregated-chart]")).not_to_have_attribute("data-points", "0")

    # Back on the list, the device is online and active.
    page.click("text=← Devices")
    row = page.locator("tr", has=page.get_by_role("link", name=name, exact=True))
    expect(row.locator("[data-test=online]")).to_have_text("online")
    expect(row).to_contain_text("active")


def test_config_and_metadata_editors(page, web_server):
    register_and_log_in(page, harness.unique("cfg"))
    name = harness.unique("cfgdev")
    register_device(page, name)
    page.get_by_role("link", name=name, exact=True).click()
    editor = page.locator("[data-test=config-editor]")
    expect(editor).to_have_value("{}")
    editor.fill("{not json")
    expect(editor).to_have_class(re.compile("invalid"))
    editor.fill('{"interval_s": 30, "mode": "eco"}')
    page.click("[data-test=config-save]")
    expect(page.locator("[data-test=config-version]")).to_contain_text("Version 1")
    page.fill("[data-test=meta-tags]", "roof, north")
    page.fill("[data-test=meta-lat]", "48.85")
    page.fill("[data-test=meta-lon]", "2.35")
    page.click("[data-test=meta-save]")
    expect(page.locator("[data-test=meta-tags-shown] .tag")).to_have_count(2)
    shoot(page, "device-documents")


def test_markup_in_a_name_is_shown_as_text(page, web_server):
    register_and_log_in(page, harness.unique("xss"))
    name = '<img src=x onerror="window.__pwned=1">'
    register_device(page, name)
    link = page.locator("[data-test=device-link]").first
    expect(link).to_have_text(name)
    page.click("[data-test=device-link]")
    expect(page.locator("[data-test=device-title]")).to_have_text(name)
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__pwned") is None
    shoot(page, "markup-as-text")


def test_log_out_and_in_again(page, web_server):
    username, password = harness.unique("out"), "pw-out-123"
    register_and_log_in(page, username, password)
    expect(page.locator("[data-test=nav-admin]")).to_have_count(0)  # not an admin
    page.click("[data-test=logout]")
    expect(page).to_have_url(re.compile(r"#/login$"))
    assert page.evaluate("sessionStorage.length") == 0
    page.goto("/#/devices")
    expect(page).to_have_url(re.compile(r"#/login$"))
    # A wrong password is refused with the API's message.
    page.fill("[data-test=login-username]", username)
    page.problems.expect(r"status of 401")
    page.fill("[data-test=login-password]", "wrong")
    page.click("[data-test=login-submit]")
    expect(page.locator("[data-test=notice-error]")).to_contain_text("invalid username or password")
    log_in(page, username, password)
    assert "token" not in page.url


def test_rotate_key(page, web_server):
    register_and_log_in(page, harness.unique("rot"))
    old_key = register_device(page, harness.unique("rotdev"))
    page.once("dialog", lambda d: d.accept())
    page.click("[data-test=rotate-key]")
    new_key = page.locator("[data-test=api-key]")
    expect(new_key).not_to_have_text(old_key)
    r = requests.post(f"{web_server.base}/api/v1/telemetry", json={"data": {"t": 1}},
                      headers={"X-API-Key": old_key}, timeout=30)
    harness.expect_error(r, 401)
    send(web_server, new_key.inner_text(), t=1)


def test_admin_link_only_for_admins(page, web_server):
    admin = harness.promote_to_admin(harness.make_user(web_server, "bearer"))
    log_in(page, admin.username, admin.password)
    page.click("[data-test=nav-admin]")
    expect(page).to_have_url(re.compile(r"#/admin$"))
