"""GET /telemetry/{id}/measurements: a device's measurement catalog — name,
type of the latest value, unit (metadata "<name>_unit"), first and last
seen, count — sorted by name, bounded by the page byte budget.

Who may read it (the device's key, its owner, the admin; 401/403/404) is
checked with the other per-device reads in test_telemetry.py
(test_read_access). Tests involving a user run in both auth modes."""
import pytest

from conftest import describe, expect, expect_error, make_user
from test_telemetry import MIN, iso, new_device, now_ms


@pytest.fixture
def owner(shared_user):
    return shared_user


@pytest.fixture
def dev(owner):
    return new_device(owner)


def catalog(client, dev_id):
    r = client.get(f"/telemetry/{dev_id}/measurements")
    body = expect(r, 200)
    assert body["device_id"] == dev_id, describe(r)
    assert body["count"] == len(body["measurements"]), describe(r)
    names = [m["name"] for m in body["measurements"]]
    assert names == sorted(names), f"not sorted by name\n{describe(r)}"
    return body


def by_name(body):
    return {m["name"]: m for m in body["measurements"]}


def test_types_units_and_times(dev, owner, srv):
    now = now_ms()
    t1, t2, t3 = now - 30 * MIN, now - 20 * MIN, now - 10 * MIN
    dev.post({"temp": 20, "door": False, "label": "a", "zeta": 1},
             metadata={"temp_unit": "\u00b0C", "site": "x", "ghost_unit": "V"},
             timestamp=iso(t2))
    dev.post({"temp": 21.5, "door": "jammed", "pressure": 1013},
             metadata={"pressure_unit": "hPa"}, timestamp=iso(t3))
    dev.batch([{"data": {"temp": 19, "Alpha": True, "a.b-c_d": 0.5}, "timestamp": iso(t1)}])
    want = {
        # the unit of the first message; an older sample moves first_seen
        "temp": ("number", "\u00b0C", t1, t3, 3),
        # the type is that of the latest value, count holds every value
        "door": ("string", None, t2, t3, 2),
        "label": ("string", None, t2, t2, 1),
        "zeta": ("number", None, t2, t2, 1),
        "pressure": ("number", "hPa", t3, t3, 1),
        "Alpha": ("boolean", None, t1, t1, 1),
        "a.b-c_d": ("number", None, t1, t1, 1),
    }
    for label, client in (("key", dev.api), ("owner", owner.api), ("admin", srv.admin)):
        body = catalog(client, dev.id)
        assert body["device_name"] == dev.name and "truncated" not in body, body
        # byte order: upper case first; a unit for a name never sent adds nothing
        assert [m["name"] for m in body["measurements"]] == \
            ["Alpha", "a.b-c_d", "door", "label", "pressure", "temp", "zeta"], f"[{label}] {body}"
        got = {m["name"]: (m["type"], m["unit"], m["first_seen"], m["last_seen"], m["count"])
               for m in body["measurements"]}
        assert got == {k: (t, u, iso(f), iso(l), c) for k, (t, u, f, l, c) in want.items()}, \
            f"[{label}]"
    # a later message's unit replaces the earlier one
    dev.post({"temp": 300}, metadata={"temp_unit": "K"}, timestamp=iso(now - 5 * MIN))
    temp = by_name(catalog(owner.api, dev.id))["temp"]
    assert (temp["unit"], temp["count"], temp["last_seen"]) == ("K", 4, iso(now - 5 * MIN)), temp


def test_device_without_data_has_empty_list(dev, owner, srv):
    for client in (dev.api, owner.api, srv.admin):
        r = client.get(f"/telemetry/{dev.id}/measurements")
        body = expect(r, 200)
        assert body["measurements"] == [] and body["count"] == 0, describe(r)
        assert "truncated" not in body, describe(r)


def test_follows_range_deletion(dev, owner):
    now = now_ms()
    for age, value in ((40, 1), (30, 2), (20, 3)):
        dev.post({"x": value}, timestamp=iso(now - age * MIN))
    dev.post({"x": 4, "only_new": True}, timestamp=iso(now - 10 * MIN))
    x = by_name(catalog(owner.api, dev.id))["x"]
    assert (x["count"], x["first_seen"], x["last_seen"]) == \
        (4, iso(now - 40 * MIN), iso(now - 10 * MIN)), x
    # the oldest and the newest go: times and counts follow, a name left
    # without values leaves the catalog
    for lo, hi in ((45, 35), (15, 5)):
        expect(owner.api.delete(f"/telemetry/{dev.id}", json={
            "start_time": iso(now - lo * MIN), "stop_time": iso(now - hi * MIN)}), 200)
    body = catalog(owner.api, dev.id)
    assert [m["name"] for m in body["measurements"]] == ["x"], body
    x = body["measurements"][0]
    assert (x["count"], x["first_seen"], x["last_seen"]) == \
        (2, iso(now - 30 * MIN), iso(now - 20 * MIN)), x
    expect(owner.api.delete(f"/telemetry/{dev.id}", json={"start_time": "-1h", "stop_time": "now"}),
           200)
    assert catalog(owner.api, dev.id)["measurements"] == []


def test_key_of_a_device_switched_off_is_refused(dev, owner, srv):
    dev.post({"a": 1})
    expect(srv.admin.put(f"/admin/devices/{dev.id}/status", json={"status": "maintenance"}), 200)
    expect_error(dev.api.get(f"/telemetry/{dev.id}/measurements"), 403)
    assert [m["name"] for m in catalog(owner.api, dev.id)["measurements"]] == ["a"]
    expect(srv.admin.put(f"/admin/devices/{dev.id}/status", json={"status": "active"}), 200)
    assert catalog(dev.api, dev.id)["count"] == 1


def test_deleted_device_is_404(users, srv):
    user = users.new()
    d = new_device(user)
    d.post({"a": 1})
    expect(srv.admin.delete(f"/admin/devices/{d.id}"), 200)
    for client in (user.api, srv.admin):
        expect_error(client.get(f"/telemetry/{d.id}/measurements"), 404)
    expect_error(d.api.get(f"/telemetry/{d.id}/measurements"), 401)


def test_is_bounded_by_bytes(start_server):
    """Very many names: the list stops at the page byte budget, says so,
    and holds the first names in order."""
    budget = 65536
    s = start_server(env={"IOTFLOW_MAX_PAGE_BYTES": str(budget)})
    owner = make_user(s, "bearer")
    d = new_device(owner)
    names = []
    for m in range(8):                        # 800 names, ~150 bytes of entry each
        batch = {f"n{m}_{'x' * 40}_{k:02d}": k for k in range(100)}
        names += batch
        d.post(batch)
    r = owner.api.get(f"/telemetry/{d.id}/measurements")
    body = expect(r, 200)
    listed = [m["name"] for m in body["measurements"]]
    assert body.get("truncated") is True and 0 < len(listed) < len(names), \
        f"{len(listed)} of {len(names)} names, truncated={body.get('truncated')}"
    assert listed == sorted(names)[:len(listed)]
    assert budget <= len(r.content) < budget + 1024, len(r.content)
    small = new_device(owner)
    small.post({"a": 1})
    body = expect(owner.api.get(f"/telemetry/{small.id}/measurements"), 200)
    assert "truncated" not in body and body["count"] == 1, body
