"""The groups, alerts and admin pages in a real browser: a group made and
filled through the UI; an alert rule made through the UI, fired by
telemetry sent over HTTP, the alert arriving live and acknowledged and
resolved through the UI; the admin page for an admin only; markup in a
group's name shown as text. Users and devices the test only needs to
exist are made over the API; what the test is about goes through the page.
Every test fails on a console error, a page error or a CSP violation
(conftest.py)."""
import re
import time

from playwright.sync_api import expect

from conftest import harness, shoot
from test_dashboard import send


def log_in(page, user):
    page.goto("/#/login")
    page.fill("[data-test=login-username]", user.username)
    page.fill("[data-test=login-password]", user.password)
    page.click("[data-test=login-submit]")
    expect(page).to_have_url(re.compile(r"#/devices$"))
    expect(page.locator("[data-test=nav-user]")).to_have_text(user.username)


def new_user(server):
    return harness.make_user(server, "bearer")


def accept_next_confirm(page):
    page.once("dialog", lambda dialog: dialog.accept())


def until(check, what, seconds=15):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)


def notice(page, kind):
    return page.locator(f"[data-test=notice-{kind}]")


def row_of(page, table_test, text):
    return page.locator(f"[data-test={table_test}] tbody tr", has_text=text)


# ---- groups -------------------------------------------------------------

def test_group_made_and_filled_through_the_ui(page, web_server):
    user = new_user(web_server)
    kept = harness.register_device(user, name=harness.unique("kept"))
    other = harness.register_device(user, name=harness.unique("other"))
    log_in(page, user)

    page.click("[data-test=nav-groups]")
    expect(page).to_have_url(re.compile(r"#/groups$"))
    name = harness.unique("lab")
    page.fill("[data-test=group-name]", name)
    page.fill("[data-test=group-description]", "the test bench")
    page.click("[data-test=group-submit]")
    expect(notice(page, "success")).to_contain_text(name)
    row = row_of(page, "groups", name)
    expect(row.locator("[data-test=group-count]")).to_have_text("0")
    # The API's refusal is shown as it says it.
    page.problems.expect(r"status of 409")
    page.fill("[data-test=group-name]", name)
    page.click("[data-test=group-submit]")
    expect(notice(page, "error")).to_contain_text("already")
    expect(row_of(page, "groups", name)).to_have_count(1)

    row.locator("[data-test=group-link]").click()
    expect(page).to_have_url(re.compile(r"#/groups/\d+$"))
    group_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("h1")).to_have_text(f"Group: {name}")
    for device in (kept, other):
        page.select_option("[data-test=group-add-device]", str(device["id"]))
        page.click("[data-test=group-add]")
        expect(page.locator("[data-test=member-link]", has_text=device["name"])).to_be_visible()
    expect(page.locator("[data-test=member-link]")).to_have_count(2)
    # Both are members now: nothing is left to offer.
    expect(page.locator("[data-test=group-add-device] option")).to_have_count(1)
    link = page.locator("[data-test=member-link]", has_text=kept["name"])
    assert link.get_attribute("href") == f"#/devices/{kept['id']}"

    # One configuration for every member; not-JSON is refused on the page
    # (nothing sent: a refused request would show as a console error).
    editor = page.locator("[data-test=group-config]")
    editor.fill("{not json")
    page.click("[data-test=group-config-apply]")
    expect(editor).to_have_class(re.compile("invalid"))
    expect(notice(page, "error")).to_contain_text("Not valid JSON")
    editor.fill("[1, 2]")
    page.click("[data-test=group-config-apply]")
    expect(notice(page, "error")).to_contain_text("JSON object")
    editor.fill('{"interval": 15, "mode": "eco"}')
    page.click("[data-test=group-config-apply]")
    expect(notice(page, "success")).to_contain_text("2 device(s)")
    for device in (kept, other):
        body = harness.expect(user.api.get(f"/devices/{device['id']}/config"), 200)
        assert body["version"] == 1 and body["config"] == {"interval": 15, "mode": "eco"}, body
    shoot(page, "group")

    accept_next_confirm(page)
    row_of(page, "group-devices", other["name"]).locator("[data-test=member-remove]").click()
    expect(page.locator("[data-test=member-link]")).to_have_count(1)
    members = harness.expect(user.api.get(f"/groups/{group_id}/devices"), 200)["devices"]
    assert [d["id"] for d in members] == [kept["id"]]

    page.click("text=← All groups")
    row = row_of(page, "groups", name)
    expect(row.locator("[data-test=group-count]")).to_have_text("1")
    shoot(page, "groups")
    accept_next_confirm(page)
    row.locator("[data-test=group-delete]").click()
    expect(row_of(page, "groups", name)).to_have_count(0)
    harness.expect_error(user.api.get(f"/groups/{group_id}"), 404)
    # The device stays.
    harness.expect(user.api.get(f"/devices/{kept['id']}/status"), 200)


def test_markup_in_a_group_name_is_shown_as_text(page, web_server):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, new_user(web_server))
    page.click("[data-test=nav-groups]")
    name = "<img src=x onerror=alert(1)>"
    page.fill("[data-test=group-name]", name)
    page.click("[data-test=group-submit]")
    link = page.locator("[data-test=group-link]")
    expect(link).to_have_text(name)
    assert page.locator("main img").count() == 0
    link.click()
    expect(page.locator("h1")).to_have_text(f"Group: {name}")
    assert page.locator("img").count() == 0
    shoot(page, "group-markup-as-text")
    assert dialogs == [], f"the name ran as markup: {dialogs}"


# ---- alerts -------------------------------------------------------------

def test_alert_rule_fires_live_and_is_handled_through_the_ui(page, web_server):
    user = new_user(web_server)
    device = harness.register_device(user, name=harness.unique("boiler"))
    log_in(page, user)
    page.click("[data-test=nav-alerts]")
    expect(page).to_have_url(re.compile(r"#/alerts$"))
    expect(page.locator("[data-test=alerts]")).to_contain_text("No alerts.")

    rule_name = harness.unique("hot")
    page.fill("[data-test=rule-name]", rule_name)
    page.select_option("[data-test=rule-scope]", f"device:{device['id']}")
    page.fill("[data-test=rule-measurement]", "temperature")
    page.select_option("[data-test=rule-operator]", ">")
    page.fill("[data-test=rule-threshold]", "30")
    page.select_option("[data-test=rule-severity]", "critical")
    page.select_option("[data-test=rule-auto-resolve]", "no")
    page.click("[data-test=rule-submit]")
    rule_row = row_of(page, "rules", rule_name)
    expect(rule_row).to_contain_text("temperature > 30")
    expect(rule_row).to_contain_text(device["name"])
    rules = harness.expect(user.api.get("/alert-rules"), 200)["rules"]
    assert [(r["name"], r["device_id"], r["severity"], r["auto_resolve"]) for r in rules] == \
        [(rule_name, device["id"], "critical", False)], rules

    # The alert comes over the live stream: the page is not reloaded (the
    # marker set on this window survives).
    page.evaluate("window.__sameWindow = true")
    send(web_server, device["api_key"], temperature=35.5)
    status = page.locator("[data-test=alert-status]")
    expect(status).to_have_count(1)
    expect(status).to_have_text("active")
    row = page.locator("[data-test=alerts] tbody tr").first
    expect(row).to_contain_text(rule_name)
    expect(row).to_contain_text("35.5")
    expect(page.locator("[data-test=summary-critical]")).to_have_text("1")
    assert page.evaluate("window.__sameWindow") is True
    shoot(page, "alerts-live")

    row.locator("[data-test=alert-acknowledge]").click()
    expect(status).to_have_text("acknowledged")
    expect(row.locator("[data-test=alert-acknowledge]")).to_have_count(0)
    row.locator("[data-test=alert-resolve]").click()
    expect(status).to_have_text("resolved")
    expect(row.locator("button")).to_have_count(0)
    expect(page.locator("[data-test=summary-resolved]")).to_have_text("1")
    alert = harness.expect(user.api.get("/alerts"), 200)["alerts"][0]
    assert alert["status"] == "resolved" and alert["acknowledged_by"] == user.user_id \
        and alert["resolved_by"] == user.user_id, alert

    # Raised and changed elsewhere (over the API): a new row on top, then
    # changed in place, still without a reload.
    other = harness.expect(user.api.post("/alerts", json={
        "device_id": device["id"], "severity": "warning", "message": "raised by hand"}), 201)["alert"]
    first = page.locator("[data-test=alerts] tbody tr").first
    expect(first).to_contain_text("raised by hand")
    expect(status).to_have_count(2)
    harness.expect(user.api.post(f"/alerts/{other['id']}/acknowledge"), 200)
    expect(page.locator(f"[data-test=alert-status][data-alert='{other['id']}']")).to_have_text("acknowledged")
    expect(status).to_have_count(2)
    expect(page.locator("[data-test=summary-total]")).to_have_text("2")
    expect(page.locator("[data-test=summary-acknowledged]")).to_have_text("1")

    # The filters ask the server again.
    page.select_option("[data-test=alert-filter-status]", "resolved")
    expect(status).to_have_count(1)
    expect(status).to_have_text("resolved")
    assert page.evaluate("window.__sameWindow") is True
    shoot(page, "alerts")

    accept_next_confirm(page)
    rule_row.locator("[data-test=rule-delete]").click()
    expect(row_of(page, "rules", rule_name)).to_have_count(0)
    assert harness.expect(user.api.get("/alert-rules"), 200)["rules"] == []
    # Leaving the page closes the stream quietly (no console error).
    page.click("[data-test=nav-groups]")
    expect(page).to_have_url(re.compile(r"#/groups$"))


def test_alert_list_pages_with_more(page, web_server):
    user = new_user(web_server)
    device = harness.register_device(user)
    for i in range(55):  # the page's size is 50
        harness.expect(user.api.post("/alerts", json={
            "device_id": device["id"], "severity": "info", "message": f"note {i}"}), 201)
    log_in(page, user)
    page.click("[data-test=nav-alerts]")
    rows = page.locator("[data-test=alerts] tbody tr")
    expect(rows).to_have_count(50)
    page.click("[data-test=alerts-more]")
    expect(rows).to_have_count(55)
    # Every alert once (the second page starts strictly after the first).
    messages = page.locator("[data-test=alerts] [data-test=alert-message]").all_inner_texts()
    assert sorted(messages) == sorted(f"note {i}" for i in range(55)), messages
    expect(page.locator("[data-test=alerts-more]")).to_be_hidden()
    expect(page.locator("[data-test=summary-info]")).to_have_text("55")


# ---- admin --------------------------------------------------------------

def test_only_an_admin_gets_the_admin_page(page, web_server):
    log_in(page, new_user(web_server))
    expect(page.locator("[data-test=nav-groups]")).to_be_visible()
    expect(page.locator("[data-test=nav-admin]")).to_have_count(0)
    page.goto("/#/admin")
    expect(page.locator("[data-test=admin-forbidden]")).to_contain_text("administrators only")
    expect(page.locator("[data-test=admin-stats]")).to_have_count(0)


def test_admin_page(page, web_server):
    admin = harness.promote_to_admin(new_user(web_server))
    someone = new_user(web_server)
    device = harness.register_device(someone, name=harness.unique("fleet"))
    log_in(page, admin)
    page.click("[data-test=nav-admin]")
    expect(page).to_have_url(re.compile(r"#/admin$"))
    stats = harness.expect(web_server.admin.get("/admin/stats"), 200)
    expect(page.locator("[data-test=stat-users]")).to_have_text(str(stats["total_users"]))

    # Users: deactivate someone (their login is refused), activate again.
    users = page.locator("[data-test=admin-users]")
    while row_of(page, "admin-users", someone.username).count() == 0 \
            and page.locator("[data-test=admin-users-more]").is_visible():
        page.click("[data-test=admin-users-more]")
    row = row_of(page, "admin-users", someone.username)
    expect(row.locator("[data-test=user-state]")).to_have_text("active")
    expect(row_of(page, "admin-users", admin.username).locator("button")).to_have_count(0)
    row.locator("[data-test=user-deactivate]").click()
    expect(row.locator("[data-test=user-state]")).to_have_text("inactive")
    harness.expect_error(harness.login(web_server, someone.username, someone.password), 401)
    row.locator("[data-test=user-activate]").click()
    expect(row.locator("[data-test=user-state]")).to_have_text("active")
    harness.expect(harness.login(web_server, someone.username, someone.password), 200)
    assert users.is_visible()

    # Devices: another user's device goes to maintenance.
    while row_of(page, "admin-devices", device["name"]).count() == 0 \
            and page.locator("[data-test=admin-devices-more]").is_visible():
        page.click("[data-test=admin-devices-more]")
    drow = row_of(page, "admin-devices", device["name"])
    expect(drow).to_contain_text(someone.username)
    drow.locator("[data-test=admin-device-status]").select_option("maintenance")
    expect(notice(page, "success")).to_contain_text("maintenance")
    got = harness.expect(web_server.admin.get(f"/admin/devices/{device['id']}"), 200)["device"]
    assert got["status"] == "maintenance" and got["status_set_by"] == "admin", got

    # The event log, filtered by type. Events are written within about a
    # second: wait for this one over the API, then ask the page.
    until(lambda: harness.expect(web_server.admin.get("/events", params={
        "type": "user.deactivated", "user_id": someone.user_id}), 200)["events"], "user.deactivated event")
    page.select_option("[data-test=admin-event-filter]", "user.deactivated")
    types = page.locator("[data-test=admin-events] [data-test=event-type]")
    expect(row_of(page, "admin-events", someone.username)).to_have_count(1)
    assert set(types.all_inner_texts()) == {"user.deactivated"}
    shoot(page, "admin")
