"""Two iotflowd instances on one PostgreSQL and one Redis, as behind a load
balancer: a configuration PUT on instance B reaches a device subscribed on
A, and key rotation, device deletion and owner deactivation on B close the
device's MQTT connections on A (the cache's pub/sub "device:notice").

Runs when `make test-mqtt` finds the servers of scripts/services.sh
(IOTFLOW_TEST_MQTT_DATABASE_URL and IOTFLOW_TEST_MQTT_REDIS_URL; the config
test also IOTFLOW_TEST_MQTT_MONGODB_URL, FerretDB); skipped otherwise: the
embedded cache and documents are one process's."""
import dataclasses

import pytest

from mqtt_harness import (BASE_ENV, CONFIG, MQTT_DATABASE_URL, MQTT_MONGODB_URL, MQTT_REDIS_URL,
                          RC_BAD_CREDENTIALS, Device, MqttServer, expect, make_user,
                          register_device, shared_namespace)
from test_mqtt_config import expect_config
from test_mqtt_disconnects import assert_closed_by_admin

pytestmark = pytest.mark.skipif(not (MQTT_DATABASE_URL and MQTT_REDIS_URL),
                                reason="needs PostgreSQL + Redis (scripts/services.sh)")


@pytest.fixture(scope="module")
def pair():
    shared = shared_namespace()
    # Key-cache entries live an hour: what A forgets, it forgets by B's
    # notice, not by expiry.
    env = {**BASE_ENV, "IOTFLOW_KEY_CACHE_TTL_MS": "3600000"}
    servers = [MqttServer(backends=shared, env=env).start() for _ in range(2)]
    yield servers
    for s in servers:
        s.stop_and_check()
        s.cleanup()


@pytest.fixture
def setup(pair):
    """A device registered on A; its owner and it as seen through B."""
    a, b = pair
    user = make_user(a, "bearer")
    info = register_device(user)
    user_b = dataclasses.replace(user, server=b)   # a bearer token is good on both
    return a, b, Device(user, info), user_b, Device(user_b, info)


@pytest.mark.skipif(not MQTT_MONGODB_URL,
                    reason="needs documents shared by the instances (a MongoDB-protocol server)")
def test_config_put_on_b_reaches_a(setup, connect, version):
    a, b, device_a, user_b, device_b = setup
    m = connect(device_a, version)
    m.subscribe(CONFIG)
    device_b.put_config({"from": "B"})
    assert expect_config(m, device_a, 1)["config"] == {"from": "B"}


def test_rotation_on_b_disconnects_on_a(setup, connect, mqtt, version):
    a, b, device_a, user_b, device_b = setup
    m = connect(device_a, version)
    expect(user_b.api.post(f"/devices/{device_b.id}/rotate-key"), 200)
    assert_closed_by_admin(m, "key rotation on the other instance")
    assert mqtt(a, version, key=device_a.key).connect() == RC_BAD_CREDENTIALS


def test_deletion_on_b_disconnects_on_a(setup, connect, version):
    a, b, device_a, user_b, device_b = setup
    m = connect(device_a, version)
    expect(b.admin.delete(f"/admin/devices/{device_b.id}"), 200)
    assert_closed_by_admin(m, "device deletion on the other instance")


def test_owner_deactivation_on_b_disconnects_on_a(setup, connect, version):
    a, b, device_a, user_b, device_b = setup
    m = connect(device_a, version)
    expect(b.admin.put(f"/users/{user_b.user_id}", json={"is_active": False}), 200)
    assert_closed_by_admin(m, "owner deactivation on the other instance")
