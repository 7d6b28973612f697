"""Debian's mosquitto_pub and mosquitto_sub against iotflowd: the device
key as password with any user name, QoS 1 publishes stored by the time the
client exits, and the configuration received after a PUT over HTTP."""
import json

from mqtt_harness import BATCH, CONFIG, TELEMETRY, mosquitto_pub


def seqs(device):
    return sorted(m["seq"] for m in device.stored())


def test_mosquitto_pub_qos1_is_stored_when_it_exits(server, device, version):
    for i in range(3):
        r = mosquitto_pub(server, version, device.key, TELEMETRY, json.dumps({"data": {"seq": i}}))
        assert r.returncode == 0, f"mosquitto_pub exit {r.returncode}: {r.stderr}"
    r = mosquitto_pub(server, version, device.key, BATCH,
                      json.dumps([{"data": {"seq": 3}}, {"data": {"seq": 4}}]))
    assert r.returncode == 0, f"mosquitto_pub exit {r.returncode}: {r.stderr}"
    # QoS 1: mosquitto_pub exits after the PUBACK, sent after the commit
    assert seqs(device) == [0, 1, 2, 3, 4]


def test_mosquitto_pub_qos0(server, device, version):
    r = mosquitto_pub(server, version, device.key, TELEMETRY, json.dumps({"data": {"seq": 7}}), qos=0)
    assert r.returncode == 0, f"mosquitto_pub exit {r.returncode}: {r.stderr}"
    device.wait_stored(1)
    assert seqs(device) == [7]


def test_mosquitto_pub_bad_key_is_refused(server, device, version):
    r = mosquitto_pub(server, version, "not-the-key", TELEMETRY, json.dumps({"data": {"seq": 1}}))
    assert r.returncode != 0, f"mosquitto_pub succeeded with a bad key: {r.stdout} {r.stderr}"
    assert "bad user name or password" in r.stderr.lower(), r.stderr
    assert device.stored() == []


def test_mosquitto_sub_receives_config_after_put(server, device, version, mosquitto_sub):
    sub = mosquitto_sub(server, version, device.key, CONFIG, 1)
    sub.wait_suback()
    device.put_config({"interval": 15, "label": "from HTTP"})
    got = sub.next_json()
    assert got == device.own_config(), got
    assert got["config"] == {"interval": 15, "label": "from HTTP"} and got["version"] == 1
    assert sub.finish() == 0


def test_mosquitto_sub_receives_current_config_at_once(server, device, version, mosquitto_sub):
    device.put_config({"interval": 5})
    sub = mosquitto_sub(server, version, device.key, CONFIG, 1)
    got = sub.next_json()
    assert got == device.own_config() and got["version"] == 1, got
    assert any("r1" in line for line in sub.all if "received PUBLISH" in line), \
        f"the current config came without the retain flag: {sub.all}"
    assert sub.finish() == 0


def test_mosquitto_sub_ignoring_retained_gets_the_change(server, device, version, mosquitto_sub):
    device.put_config({"interval": 5})
    sub = mosquitto_sub(server, version, device.key, CONFIG, 1, ignore_retained=True)
    sub.wait_suback()
    device.put_config({"interval": 6})
    got = sub.next_json()
    assert got["version"] == 2 and got["config"] == {"interval": 6}, got
    assert sub.finish() == 0
