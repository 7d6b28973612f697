"""Alert rules: /api/v1/alert-rules — create, read, update, delete, the
validation of every field, duplicate names, scopes (device, group, all)
and who may touch a rule (its owner or the admin)."""
import pytest

from conftest import create_group, expect, expect_error, expect_rejects, register_device, unique


def rule_body(**fields):
    body = {"name": unique("rule"), "measurement": "temperature", "operator": ">",
            "threshold": 30, "severity": "warning"}
    body.update(fields)
    return body


def create_rule(user, **fields):
    return expect(user.api.post("/alert-rules", json=rule_body(**fields)), 201)["rule"]


def test_create_and_read_a_rule(user):
    dev = register_device(user)
    rule = create_rule(user, device_id=dev["id"], duration_s=5, cooldown_s=60,
                       auto_resolve=False, severity="critical")
    assert len(rule["id"]) == 32 and rule["scope"] == "device"
    assert rule["device_id"] == dev["id"] and rule["group_id"] is None
    assert (rule["duration_s"], rule["cooldown_s"], rule["auto_resolve"]) == (5, 60, False)
    assert rule["enabled"] is True and rule["severity"] == "critical"
    got = expect(user.api.get(f"/alert-rules/{rule['id']}"), 200)["rule"]
    assert got == rule


def test_scope_defaults_to_all_devices_and_group_scope(user):
    assert create_rule(user)["scope"] == "all"
    group = create_group(user)
    rule = create_rule(user, group_id=group["id"])
    assert rule["scope"] == "group" and rule["group_id"] == group["id"]


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!="])
def test_every_operator_is_accepted(shared_user, op):
    assert create_rule(shared_user, operator=op)["operator"] == op


def test_bad_fields_are_refused(shared_user):
    cases = {
        "unknown operator": rule_body(operator="=>"),
        "operator not a string": rule_body(operator=1),
        "unknown severity": rule_body(severity="fatal"),
        "missing name": {k: v for k, v in rule_body().items() if k != "name"},
        "empty name": rule_body(name=""),
        "long name": rule_body(name="x" * 65),
        "name not a string": rule_body(name=5),
        "missing measurement": {k: v for k, v in rule_body().items() if k != "measurement"},
        "bad measurement": rule_body(measurement="temp erature"),
        "threshold a string": rule_body(threshold="30"),
        "threshold missing": {k: v for k, v in rule_body().items() if k != "threshold"},
        "negative duration": rule_body(duration_s=-1),
        "duration a string": rule_body(duration_s="5"),
        "cooldown too long": rule_body(cooldown_s=10 ** 9),
        "auto_resolve not bool": rule_body(auto_resolve="yes"),
        "enabled not bool": rule_body(enabled=1),
        "two scopes": rule_body(device_id=1, group_id=1),
        "device id a string": rule_body(device_id="1"),
        "device id negative": rule_body(device_id=-4),
        "device id fractional": rule_body(device_id=1.5),
        "null flag": rule_body(enabled=None),
        "null duration": rule_body(duration_s=None),
        "name of 65 characters": rule_body(name="é" * 65),
        "name with NUL": rule_body(name="a\u0000b"),
    }
    expect_rejects(lambda b: shared_user.api.post("/alert-rules", json=b), cases, 400)
    expect_error(shared_user.api.post("/alert-rules", data="[1]"), 400)
    expect_error(shared_user.api.post("/alert-rules", data="{bad"), 400)


def test_names_are_counted_in_characters_and_kept_exactly(user):
    long_name = "é" * 64  # 128 bytes: longer than a store key, still one name
    rule = create_rule(user, name=long_name)
    assert expect(user.api.get(f"/alert-rules/{rule['id']}"), 200)["rule"]["name"] == long_name
    expect_error(user.api.post("/alert-rules", json=rule_body(name=long_name)), 409)
    odd = "tab\there \u200b"
    assert create_rule(user, name=odd)["name"] == odd
    expect_error(user.api.post("/alert-rules", json=rule_body(name=odd)), 409)


def test_an_integral_real_is_an_id(user):
    dev = register_device(user)
    assert create_rule(user, device_id=float(dev["id"]))["device_id"] == dev["id"]


def test_duplicate_name_is_409(user):
    name = unique("same")
    create_rule(user, name=name)
    body = expect_error(user.api.post("/alert-rules", json=rule_body(name=name)), 409)
    assert name in body["message"]
    other = create_rule(user)
    expect_error(user.api.put(f"/alert-rules/{other['id']}", json={"name": name}), 409)


def test_same_name_for_two_users_is_fine(user, other_user):
    name = unique("shared")
    create_rule(user, name=name)
    create_rule(other_user, name=name)


def test_scope_must_be_the_callers(user, other_user):
    theirs = register_device(other_user)
    expect_error(user.api.post("/alert-rules", json=rule_body(device_id=theirs["id"])), 403)
    expect_error(user.api.post("/alert-rules", json=rule_body(device_id=99999999)), 404)
    group = create_group(other_user)
    expect_error(user.api.post("/alert-rules", json=rule_body(group_id=group["id"])), 403)


def test_update_changes_only_what_is_sent(user):
    dev = register_device(user)
    rule = create_rule(user, device_id=dev["id"])
    r = user.api.put(f"/alert-rules/{rule['id']}", json={"threshold": 12.5, "enabled": False})
    got = expect(r, 200)["rule"]
    assert got["threshold"] == 12.5 and got["enabled"] is False
    assert got["device_id"] == dev["id"] and got["name"] == rule["name"]
    got = expect(user.api.put(f"/alert-rules/{rule['id']}", json={"device_id": None}), 200)["rule"]
    assert got["scope"] == "all"
    expect_error(user.api.put(f"/alert-rules/{rule['id']}", json={"operator": "~"}), 400)


def test_delete(user):
    rule = create_rule(user)
    expect(user.api.delete(f"/alert-rules/{rule['id']}"), 200)
    expect_error(user.api.get(f"/alert-rules/{rule['id']}"), 404)
    expect_error(user.api.delete(f"/alert-rules/{rule['id']}"), 404)


def test_owner_or_admin_only(user, other_user, srv):
    rule = create_rule(user)
    for call in (other_user.api.get, other_user.api.delete):
        expect_error(call(f"/alert-rules/{rule['id']}"), 403)
    expect_error(other_user.api.put(f"/alert-rules/{rule['id']}", json={"threshold": 1}), 403)
    expect(srv.admin.get(f"/alert-rules/{rule['id']}"), 200)
    expect_error(srv.api.get(f"/alert-rules/{rule['id']}"), 401)
    expect_error(user.api.get("/alert-rules/not-an-id!"), 404)


def test_list_pages_newest_first(user, other_user, srv):
    made = [create_rule(user)["id"] for _ in range(5)]
    create_rule(other_user)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = expect(user.api.get("/alert-rules", params=params), 200)
        seen += [(x["created_at"], x["id"]) for x in body["rules"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    # newest first; rules made in the same millisecond by id, descending
    assert seen == sorted(seen, reverse=True) and {i for _, i in seen} == set(made)
    expect_error(user.api.get("/alert-rules", params={"cursor": "nonsense"}), 400)
    expect_error(user.api.get("/alert-rules", params={"limit": -1}), 400)
    everyone = expect(srv.admin.get("/alert-rules", params={"limit": 1000}), 200)["rules"]
    assert set(made) <= {x["id"] for x in everyone}


def test_list_by_device(user):
    dev = register_device(user)
    mine = create_rule(user, device_id=dev["id"])
    create_rule(user)
    body = expect(user.api.get("/alert-rules", params={"device_id": dev["id"]}), 200)
    assert [x["id"] for x in body["rules"]] == [mine["id"]]
    expect_error(user.api.get("/alert-rules", params={"device_id": "x"}), 400)
