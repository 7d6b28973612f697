"""JSON numbers as JSON defines them: one number type.

An integer literal beyond int64 is valid JSON (found by the spec test,
tests/spec/run_schemathesis.py): in a field nobody reads it must not make
the body "Invalid JSON", and as a measurement it is a real. An integral
real such as 7.0 is the integer 7 where an id is expected (JSON Schema's
`type: integer` says so too)."""
from conftest import expect, key_client, register_device, create_group, unique

BIG = "18446744073709551616"        # 2^64
NEG_BIG = "-3567954850067168362496"


def test_big_integer_in_an_unknown_field_is_ignored(srv, shared_user):
    name = unique("dev")
    body = f'{{"name": "{name}", "device_type": "sensor", "x": {BIG}, "y": [{NEG_BIG}]}}'
    r = shared_user.api.post("/devices/register", data=body)
    assert expect(r, 201)["device"]["name"] == name


def test_big_integer_measurement_is_stored_as_a_real(srv, shared_user):
    dev = register_device(shared_user, device_type="sensor")
    keyed = key_client(srv, dev["api_key"])
    r = keyed.post("/telemetry", data=f'{{"data": {{"big": {BIG}, "small": 1}}}}')
    expect(r, 201)
    latest = expect(keyed.get(f"/telemetry/{dev['id']}/latest"), 200)
    assert latest["latest_data"]["big"] == float(2 ** 64)
    assert latest["latest_data"]["small"] == 1


def test_number_beyond_a_double_is_still_refused(srv, shared_user):
    dev = register_device(shared_user, device_type="sensor")
    r = key_client(srv, dev["api_key"]).post("/telemetry", data='{"data": {"x": 1e400}}')
    body = expect(r, 400)
    assert body["error"] == "Invalid JSON"


def test_integral_real_is_an_id(srv, shared_user):
    dev = register_device(shared_user, device_type="sensor")
    group = create_group(shared_user)
    r = shared_user.api.post(f"/groups/{group['id']}/devices", data=f'{{"device_id": {dev["id"]}.0}}')
    assert expect(r, 201)["membership"]["device_id"] == dev["id"]
    # a fraction is not an id
    r = shared_user.api.post(f"/groups/{group['id']}/devices", data=f'{{"device_id": {dev["id"]}.5}}')
    assert expect(r, 400)["error"] == "Validation error"


def test_bulk_add_takes_integral_reals(srv, shared_user):
    dev = register_device(shared_user, device_type="sensor")
    group = create_group(shared_user)
    r = shared_user.api.post(f"/groups/{group['id']}/devices/bulk",
                             data=f'{{"device_ids": [{dev["id"]}.0, 0, {BIG}]}}')
    body = expect(r, 201)
    assert body["added"] == 1 and body["skipped"] == 2, body
