"""Alerts: rules firing through real ingest (POST /telemetry) with every
operator, duration, cooldown and auto-resolve; alerts raised by hand;
acknowledge and resolve and the transitions they refuse; the summary;
paging; who may see what; the live stream (GET /alerts/stream) on one
instance, and across two instances sharing Redis (only when
IOTFLOW_TEST_REDIS_URL is set: the embedded cache is one process's)."""
import json
import queue
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from conftest import (SERVER_BACKENDS, STOP_TIMEOUT, TIMEOUT, Server, assert_ts, expect,
                      expect_error, expect_rejects, fresh_backends, key_client, make_user,
                      register_device, unique)
from test_alert_rules import create_rule
from test_telemetry_stream import Stream, parse_block

WAIT = 15  # seconds for an alert to follow a message


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def post(dev, data, at=None):
    body = {"data": data, **({"timestamp": iso(at)} if at else {})}
    expect(key_client(dev["_server"], dev["api_key"]).post("/telemetry", json=body), 201)


def device(user):
    dev = register_device(user)
    dev["_server"] = user.server
    return dev


def alerts_of(user, **params):
    return expect(user.api.get("/alerts", params={"limit": 1000, **params}), 200)["alerts"]


def until(check, what, seconds=WAIT):
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)


def wait_alerts(user, n, what="alerts", **params):
    return until(lambda: (lambda a: a if len(a) >= n else None)(alerts_of(user, **params)), what)


def settle(user, dev, marker_rule):
    """Returns once every message posted so far was evaluated: a marker
    message fires `marker_rule` (a rule on measurement 'marker' > 0)."""
    before = len(alerts_of(user, device_id=dev["id"]))
    post(dev, {"marker": 1})
    wait_alerts(user, before + 1, "marker alert", device_id=dev["id"])
    post(dev, {"marker": 0})  # resolves it, so that the next marker fires again


def marker_rule(user, dev):
    return create_rule(user, device_id=dev["id"], measurement="marker", operator=">",
                       threshold=0, severity="info")


CASES = [(">", 10, [5, 10, 11]), (">=", 10, [9, 10]), ("<", 0, [1, 0, -1]),
         ("<=", 0, [1, 0]), ("==", 7, [6, 7]), ("!=", 7, [7, 8])]


@pytest.mark.parametrize("op,threshold,values", CASES)
def test_each_operator_fires_on_its_first_true_value(user, op, threshold, values):
    dev = device(user)
    rule = create_rule(user, device_id=dev["id"], measurement="v", operator=op,
                       threshold=threshold, severity="error", auto_resolve=False)
    for v in values:
        post(dev, {"v": v})
    alert = wait_alerts(user, 1, device_id=dev["id"])[0]
    assert alert["rule_id"] == rule["id"] and alert["value"] == values[-1]
    assert (alert["operator"], alert["threshold"]) == (op, threshold)
    assert alert["status"] == "active" and alert["severity"] == "error"
    assert alert["device_id"] == dev["id"] and alert["measurement"] == "v"
    assert_ts(alert["raised_at"])
    assert alert["acknowledged_at"] is None and alert["resolved_by"] is None
    assert rule["name"] in alert["message"]


def test_auto_resolve_and_fire_again(user):
    dev = device(user)
    create_rule(user, device_id=dev["id"], measurement="t", operator=">", threshold=30)
    post(dev, {"t": 31})
    post(dev, {"t": 35})  # still firing: no second alert
    first = wait_alerts(user, 1, device_id=dev["id"])[0]
    post(dev, {"t": 20})
    until(lambda: alerts_of(user, device_id=dev["id"], status="resolved"), "auto-resolve")
    resolved = alerts_of(user, device_id=dev["id"], status="resolved")[0]
    assert resolved["id"] == first["id"] and resolved["resolved_by"] == "system"
    assert_ts(resolved["resolved_at"])
    post(dev, {"t": 40})
    wait_alerts(user, 2, device_id=dev["id"])
    assert len(alerts_of(user, device_id=dev["id"], status="active")) == 1


def test_without_auto_resolve_the_alert_stays_until_resolved_by_hand(user):
    dev = device(user)
    mark = marker_rule(user, dev)
    create_rule(user, device_id=dev["id"], measurement="t", operator=">", threshold=30,
                auto_resolve=False)
    post(dev, {"t": 31})
    alert = wait_alerts(user, 1, device_id=dev["id"])[0]
    post(dev, {"t": 10})
    post(dev, {"t": 50})
    settle(user, dev, mark)
    mine = [a for a in alerts_of(user, device_id=dev["id"]) if a["measurement"] == "t"]
    assert [a["id"] for a in mine] == [alert["id"]] and mine[0]["status"] == "active"
    expect(user.api.post(f"/alerts/{alert['id']}/resolve"), 200)
    post(dev, {"t": 60})  # the rule may fire again once its alert was resolved
    until(lambda: len([a for a in alerts_of(user, device_id=dev["id"])
                       if a["measurement"] == "t"]) == 2, "a new alert after the manual resolve")


def test_duration_counts_in_message_time(user):
    dev = device(user)
    mark = marker_rule(user, dev)
    create_rule(user, device_id=dev["id"], measurement="p", operator=">=", threshold=100,
                duration_s=10)
    t0 = datetime.now(timezone.utc) - timedelta(minutes=5)
    post(dev, {"p": 120}, t0)
    post(dev, {"p": 130}, t0 + timedelta(seconds=5))
    post(dev, {"p": 90}, t0 + timedelta(seconds=8))    # breaks the run
    post(dev, {"p": 110}, t0 + timedelta(seconds=9))
    post(dev, {"p": 110}, t0 + timedelta(seconds=18))  # held 9 s: not yet
    settle(user, dev, mark)
    assert not [a for a in alerts_of(user, device_id=dev["id"]) if a["measurement"] == "p"]
    post(dev, {"p": 111}, t0 + timedelta(seconds=19))  # held 10 s
    until(lambda: [a for a in alerts_of(user, device_id=dev["id"]) if a["measurement"] == "p"],
          "alert after the duration")


def test_cooldown_holds_back_a_new_alert(user):
    dev = device(user)
    mark = marker_rule(user, dev)
    create_rule(user, device_id=dev["id"], measurement="c", operator=">", threshold=0,
                cooldown_s=60)
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    post(dev, {"c": 1}, t0)
    post(dev, {"c": 0}, t0 + timedelta(seconds=1))   # resolves
    post(dev, {"c": 1}, t0 + timedelta(seconds=30))  # within the cooldown
    settle(user, dev, mark)
    assert len([a for a in alerts_of(user, device_id=dev["id"]) if a["measurement"] == "c"]) == 1
    post(dev, {"c": 1}, t0 + timedelta(seconds=61))  # past it, condition still true
    until(lambda: len([a for a in alerts_of(user, device_id=dev["id"])
                       if a["measurement"] == "c"]) == 2, "alert after the cooldown")


def test_group_and_all_scopes_and_rule_changes_apply_at_once(user):
    dev, other = device(user), device(user)
    group = expect(user.api.post("/groups", json={"name": unique("g")}), 201)["group"]
    create_rule(user, group_id=group["id"], measurement="g", operator=">", threshold=0)
    expect(user.api.post(f"/groups/{group['id']}/devices", json={"device_id": dev["id"]}), 201)
    post(dev, {"g": 1})
    wait_alerts(user, 1, device_id=dev["id"])
    everywhere = create_rule(user, measurement="h", operator="<", threshold=0)
    post(other, {"h": -1})
    wait_alerts(user, 1, device_id=other["id"])
    expect(user.api.put(f"/alert-rules/{everywhere['id']}", json={"enabled": False}), 200)
    mark = marker_rule(user, other)
    post(other, {"h": 0})
    post(other, {"h": -5})  # the rule is off: nothing new
    settle(user, other, mark)
    assert len([a for a in alerts_of(user, device_id=other["id"]) if a["measurement"] == "h"]) == 1


def test_strings_and_other_measurements_do_not_fire(user):
    dev = device(user)
    mark = marker_rule(user, dev)
    create_rule(user, device_id=dev["id"], measurement="s", operator="!=", threshold=0)
    post(dev, {"s": "text", "other": 5})
    post(dev, {"s": False})  # booleans count as 0/1: 0 != 0 is false
    settle(user, dev, mark)
    assert not [a for a in alerts_of(user, device_id=dev["id"]) if a["measurement"] == "s"]
    post(dev, {"s": True})
    until(lambda: [a for a in alerts_of(user, device_id=dev["id"]) if a["measurement"] == "s"],
          "alert on a boolean")


# ---- by hand, transitions, permissions ----------------------------------------

def raise_alert(user, dev, **fields):
    body = {"device_id": dev["id"], "severity": "warning", "message": "check the pump", **fields}
    return expect(user.api.post("/alerts", json=body), 201)["alert"]


def test_raise_by_hand_then_acknowledge_then_resolve(user):
    dev = device(user)
    alert = raise_alert(user, dev, measurement="pressure", value=3.5)
    assert alert["rule_id"] is None and alert["value"] == 3.5 and alert["status"] == "active"
    assert expect(user.api.get(f"/alerts/{alert['id']}"), 200)["alert"] == alert
    acked = expect(user.api.post(f"/alerts/{alert['id']}/acknowledge"), 200)["alert"]
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == user.user_id
    assert_ts(acked["acknowledged_at"])
    expect_error(user.api.post(f"/alerts/{alert['id']}/acknowledge"), 409)
    done = expect(user.api.post(f"/alerts/{alert['id']}/resolve"), 200)["alert"]
    assert done["status"] == "resolved" and done["resolved_by"] == user.user_id
    for action in ("acknowledge", "resolve"):
        body = expect_error(user.api.post(f"/alerts/{alert['id']}/{action}"), 409)
        assert "resolved" in body["message"]


def test_active_to_resolved_directly(user):
    alert = raise_alert(user, device(user))
    assert expect(user.api.post(f"/alerts/{alert['id']}/resolve"), 200)["alert"]["status"] == "resolved"


def test_raise_by_hand_validation(shared_user, other_user):
    dev = device(shared_user)
    good = {"device_id": dev["id"], "severity": "info", "message": "m"}
    cases = {
        "no device": {k: v for k, v in good.items() if k != "device_id"},
        "device a string": {**good, "device_id": "1"},
        "bad severity": {**good, "severity": "loud"},
        "no message": {k: v for k, v in good.items() if k != "message"},
        "empty message": {**good, "message": ""},
        "long message": {**good, "message": "x" * 1025},
        "bad measurement": {**good, "measurement": "a b"},
        "value a string": {**good, "value": "3"},
    }
    expect_rejects(lambda b: shared_user.api.post("/alerts", json=b), cases, 400)
    expect_error(shared_user.api.post("/alerts", json={**good, "device_id": 99999999}), 404)
    expect_error(other_user.api.post("/alerts", json=good), 403)


def test_others_cannot_see_or_touch_an_alert(user, other_user, srv):
    alert = raise_alert(user, device(user))
    expect_error(other_user.api.get(f"/alerts/{alert['id']}"), 403)
    expect_error(other_user.api.post(f"/alerts/{alert['id']}/acknowledge"), 403)
    assert alert["id"] not in [a["id"] for a in alerts_of(other_user)]
    expect_error(srv.api.get("/alerts"), 401)
    expect_error(user.api.get("/alerts/0123456789abcdef0123456789abcdef"), 404)
    by_admin = expect(srv.admin.post(f"/alerts/{alert['id']}/acknowledge"), 200)["alert"]
    assert by_admin["acknowledged_by"] == "admin"


def test_list_filters_and_paging(user):
    dev, other = device(user), device(user)
    made = [raise_alert(user, dev, severity=s)["id"] for s in ("info", "critical", "info", "error")]
    raise_alert(user, other)
    listed = [(a["raised_at"], a["id"]) for a in alerts_of(user, device_id=dev["id"])]
    assert listed == sorted(listed, reverse=True) and {i for _, i in listed} == set(made)
    assert {a["id"] for a in alerts_of(user, device_id=dev["id"], severity="info")} == \
        {made[0], made[2]}
    expect(user.api.post(f"/alerts/{made[1]}/resolve"), 200)
    for status in ("active", "resolved"):
        seen, cursor = [], None
        while True:
            params = {"device_id": dev["id"], "status": status, "limit": 1,
                      **({"cursor": cursor} if cursor else {})}
            body = expect(user.api.get("/alerts", params=params), 200)
            seen += [(a["raised_at"], a["id"]) for a in body["alerts"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        want = {made[1]} if status == "resolved" else {made[3], made[2], made[0]}
        assert seen == sorted(seen, reverse=True) and {i for _, i in seen} == want, status
    for bad in ({"status": "open"}, {"severity": "huge"}, {"device_id": "abc"},
                {"cursor": "zzz"}, {"limit": "-3"}):
        expect_error(user.api.get("/alerts", params=bad), 400)


def test_active_list_follows_every_change(user):
    """The active list comes from the cache; each change must show at once."""
    dev = device(user)
    a = raise_alert(user, dev)
    assert [x["id"] for x in alerts_of(user, status="active")] == [a["id"]]
    assert [x["id"] for x in alerts_of(user, status="active")] == [a["id"]]  # cached now
    b = raise_alert(user, dev)
    assert {x["id"] for x in alerts_of(user, status="active")} == {b["id"], a["id"]}
    expect(user.api.post(f"/alerts/{a['id']}/acknowledge"), 200)
    assert [x["id"] for x in alerts_of(user, status="active")] == [b["id"]]
    expect(user.api.post(f"/alerts/{b['id']}/resolve"), 200)
    assert alerts_of(user, status="active") == []


def test_summary(user, other_user):
    dev = device(user)
    ids = [raise_alert(user, dev, severity=s)["id"] for s in ("info", "info", "critical")]
    raise_alert(other_user, device(other_user))
    expect(user.api.post(f"/alerts/{ids[0]}/acknowledge"), 200)
    expect(user.api.post(f"/alerts/{ids[2]}/resolve"), 200)
    s = expect(user.api.get("/alerts/summary"), 200)
    assert s["total"] == 3
    assert s["by_status"] == {"active": 1, "acknowledged": 1, "resolved": 1}
    assert s["by_severity"] == {"info": 2, "warning": 0, "error": 0, "critical": 1}
    assert s["by_status_severity"]["resolved"] == {"critical": 1}


# ---- the live stream ----------------------------------------------------------

class AlertStream(Stream):
    """The SSE client of test_telemetry_stream on /alerts/stream."""

    def __init__(self, client):
        self.r = requests.get(client.base + client.prefix + "/alerts/stream",
                              headers=client.headers, stream=True, timeout=(TIMEOUT, 60))
        self.blocks, self.raw, self.thread = queue.Queue(), [], None
        if self.r.status_code == 200:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def alert_events(self, n, timeout=WAIT):
        out, deadline = [], time.monotonic() + timeout
        while len(out) < n:
            b = self.next_block(max(0.1, deadline - time.monotonic()))
            assert "closed" not in b, f"stream closed: {b}"
            if b.get("event") == "alert":
                out.append(json.loads(b["data"]))
            assert time.monotonic() < deadline, f"got {len(out)} of {n} alert events"
        return out


def test_stream_sends_new_and_changed_alerts_of_the_user_only(user, other_user):
    stream = AlertStream(user.api)
    theirs = AlertStream(other_user.api)
    try:
        assert stream.ok and theirs.ok
        dev = device(user)
        create_rule(user, device_id=dev["id"], measurement="t", operator=">", threshold=1)
        post(dev, {"t": 2})
        raised = stream.alert_events(1)[0]
        assert raised["type"] == "alert.raised" and raised["alert"]["device_id"] == dev["id"]
        expect(user.api.post(f"/alerts/{raised['alert']['id']}/acknowledge"), 200)
        post(dev, {"t": 0})
        changes = stream.alert_events(2)
        assert [c["type"] for c in changes] == ["alert.acknowledged", "alert.resolved"]
        assert all(c["alert"]["id"] == raised["alert"]["id"] for c in changes)
        theirs.no_event(0.5)
    finally:
        stream.close()
        theirs.close()


def test_admin_stream_sees_everyones_alerts(user, srv):
    stream = AlertStream(srv.admin)
    try:
        assert stream.ok
        alert = raise_alert(user, device(user))
        got = until(lambda: [e for e in stream.alert_events(1)
                             if e["alert"]["id"] == alert["id"]], "admin stream event")
        assert got[0]["type"] == "alert.raised"
    finally:
        stream.close()


def test_stream_needs_a_user(srv):
    expect_error(srv.api.get("/alerts/stream"), 401)


@pytest.mark.skipif(not SERVER_BACKENDS, reason="two instances share pub/sub only on Redis "
                    "(set IOTFLOW_TEST_REDIS_URL and IOTFLOW_TEST_DATABASE_URL)")
def test_stream_across_two_instances():
    shared = fresh_backends()
    a, b = Server(backends=shared).start(), Server(backends=shared).start()
    try:
        user = make_user(a, "bearer")
        stream = AlertStream(b.api.with_headers(user.headers))
        try:
            assert stream.ok
            dev = register_device(user)
            dev["_server"] = a
            create_rule(user, device_id=dev["id"], measurement="t", operator=">", threshold=1)

            def seen_on_b():
                post(dev, {"t": 5})
                post(dev, {"t": 0})
                try:
                    return [e for e in stream.alert_events(1, timeout=0.5)
                            if e["alert"]["device_id"] == dev["id"]]
                except AssertionError:
                    return None  # B's subscription not live yet
            got = until(seen_on_b, "an alert raised on A, streamed by B")
            assert got[0]["type"] == "alert.raised"
        finally:
            stream.close()
    finally:
        for s in (a, b):
            s.stop_and_check()
            s.cleanup()


def test_every_change_is_in_the_event_log(user):
    dev = device(user)
    alert = raise_alert(user, dev)
    expect(user.api.post(f"/alerts/{alert['id']}/acknowledge"), 200)
    expect(user.api.post(f"/alerts/{alert['id']}/resolve"), 200)
    for type_ in ("alert.raised", "alert.acknowledged", "alert.resolved"):
        got = until(lambda: expect(user.api.get("/events", params={"type": type_,
                                                                  "device_id": dev["id"]}),
                                   200)["events"], f"{type_} event")
        assert got[0]["details"]["alert_id"] == alert["id"], got
