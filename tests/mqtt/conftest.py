"""pytest's entry to the MQTT suite: the fixtures and hooks of
mqtt_harness.py (kept there, under a name of its own, so that the tests can
import its helpers even in a session that also loads tests/api/conftest.py)."""
from mqtt_harness import (  # noqa: F401 (fixtures and hooks, found by name)
    _shared_server_survives, connect, device, mosquitto_sub, mqtt, pytest_configure, server,
    start_server, user, version)
