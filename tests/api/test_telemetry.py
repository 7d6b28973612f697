"""Telemetry: ingest (single and batch), per-device rate limit, history with
time windows and cursor paging, latest values, windowed aggregates, range
deletion, public store status, per-user history, and what device/user
deletion and key rotation do to telemetry.

Every test that involves a user runs in both auth modes (Bearer token and
legacy X-User-ID). Timestamps are chosen relative to the machine clock the
server shares with the tests, and stay well inside the retention window."""
import calendar
import time

import pytest

from conftest import (TS_RE, describe, expect, expect_error, expect_rejects, key_client,
                      make_user, register_device)

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    """ms since the epoch → the server's own format, 2026-01-02T03:04:05.678Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def ms_of(text):
    """The inverse of iso() (asserts the server's format)."""
    assert isinstance(text, str) and TS_RE.match(text), f"bad timestamp {text!r}"
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(text[20:23])


def wide():
    """A window holding every message a test can have written."""
    return {"start_time": "2000-01-01T00:00:00Z", "end_time": iso(now_ms() + 2 * DAY)}


class Dev:
    """A registered device: its id, name, key and a client that sends the key."""

    def __init__(self, owner, info):
        self.owner, self.info = owner, info
        self.server = owner.server
        self.id, self.name, self.key = info["id"], info["name"], info["api_key"]

    @property
    def api(self):
        return key_client(self.server, self.key)

    def send(self, body):
        return self.api.post("/telemetry", json=body)

    def post(self, data, **fields):
        """POST one message; expects 201 and returns the body."""
        return expect(self.send({"data": data, **fields}), 201)

    def batch(self, messages, wrap=False):
        body = {"messages": messages} if wrap else messages
        return expect(self.api.post("/telemetry/batch", json=body), 201)


def new_device(owner, **fields):
    return Dev(owner, register_device(owner, **fields))


def history(client, dev_id, **params):
    r = client.get(f"/telemetry/{dev_id}", params=params)
    return expect(r, 200)


def read_all(client, path, list_key="data", limit=1000, max_pages=200, **params):
    """Follows next_cursor from the first page to null; returns every record
    and asserts the pages are newest first with nothing repeated."""
    records, cursor, seen = [], None, set()
    for _ in range(max_pages):
        q = {**params, "limit": limit}
        if cursor:
            q["cursor"] = cursor
        r = client.get(path, params=q)
        body = expect(r, 200)
        page = body[list_key]
        assert len(page) <= limit, describe(r)
        assert body["count"] == len(page), describe(r)
        records.extend(page)
        nxt = body["next_cursor"]
        if nxt is None:
            break
        assert isinstance(nxt, str) and nxt, describe(r)
        assert nxt not in seen, f"cursor {nxt!r} repeats\n{describe(r)}"
        seen.add(nxt)
        assert page, f"empty page with a non-null next_cursor\n{describe(r)}"
        cursor = nxt
    else:
        pytest.fail(f"paging of {path} did not end after {max_pages} pages")
    stamps = [ms_of(rec["timestamp"]) for rec in records]
    assert stamps == sorted(stamps, reverse=True), f"records not newest first across pages: {stamps[:50]}"
    return records


def stamps_of(records):
    return [rec["timestamp"] for rec in records]


@pytest.fixture
def owner(shared_user):
    return shared_user


@pytest.fixture
def dev(owner):
    return new_device(owner)


@pytest.fixture
def stranger(srv, auth_mode):
    """Another long-lived user (per auth mode) who owns none of our devices."""
    return srv.memo(("telemetry-stranger", auth_mode), lambda: make_user(srv, auth_mode))


@pytest.fixture
def bdev(bearer_server):
    """A fresh device on the bearer server, for tests of the device-key
    paths only (no user credentials involved)."""
    owner = bearer_server.memo(("telemetry-key-owner",), lambda: make_user(bearer_server, "bearer"))
    return new_device(owner)


def total_messages(server):
    body = expect(server.admin.get("/telemetry/status"), 200)
    return body["total_messages"]


# --------------------------------------------------------------------------
# POST /telemetry
# --------------------------------------------------------------------------

def test_post_returns_201_with_fields(dev):
    before = now_ms()
    r = dev.send({"data": {"temperature": 23.5, "humidity": 60}})
    body = expect(r, 201)
    after = now_ms()
    assert isinstance(body.get("message"), str) and body["message"], describe(r)
    assert body["device_id"] == dev.id, describe(r)
    assert body["device_name"] == dev.name, describe(r)
    assert body["points"] == 2, describe(r)
    assert body["stored"] is True, describe(r)
    ts = ms_of(body["timestamp"])
    assert before - 2000 <= ts <= after + 2000, f"arrival timestamp far from now\n{describe(r)}"
    data = history(dev.api, dev.id)["data"]
    assert data == [{"timestamp": body["timestamp"],
                     "measurements": {"temperature": 23.5, "humidity": 60}}], data


def test_explicit_timestamp_round_trips(dev):
    base = now_ms() - 2 * HOUR
    cases = [
        (iso(base), base),
        (iso(base + 1000)[:-5] + "Z", base // 1000 * 1000 + 1000),             # no millis
        (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 2000) // 1000)) + ".250+00:00",
         (base + 2000) // 1000 * 1000 + 250),                                 # +00:00 offset
        (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 3000) // 1000 + 7200)) + ".500+02:00",
         (base + 3000) // 1000 * 1000 + 500),                                 # +02:00 offset
        (iso(base + 4000)[:-1] + "456Z", base + 4000),                        # microseconds
        (iso(base + 5000)[:-1], base + 5000),                                 # no zone = UTC
    ]
    for i, (text, want) in enumerate(cases):
        body = dev.post({"i": i}, timestamp=text)
        assert body["timestamp"] == iso(want), f"sent {text!r}, answer {body}"
    data = history(dev.api, dev.id, start_time="-3h")["data"]
    got = {rec["measurements"]["i"]: rec["timestamp"] for rec in data}
    assert got == {i: iso(want) for i, (_, want) in enumerate(cases)}, data


def test_value_types_round_trip(dev):
    values = {"int": 42, "neg": -7, "zero": 0, "big": 1234567890123, "float": 3.25,
              "tenth": 0.1, "negf": -273.15, "tiny": 1.5e-7, "t": True, "f": False,
              "s": "hello", "empty": ""}
    dev.post(values)
    rec = history(dev.api, dev.id)["data"][0]
    m = rec["measurements"]
    assert m == values, m
    for k in ("int", "neg", "zero", "big"):
        assert type(m[k]) is int, f"{k}: integer came back as {m[k]!r}"
    for k in ("float", "tenth", "negf", "tiny"):
        assert type(m[k]) is float, f"{k}: float came back as {m[k]!r}"
    assert m["t"] is True and m["f"] is False, m
    latest = expect(dev.api.get(f"/telemetry/{dev.id}/latest"), 200)["latest_data"]
    assert latest == values, latest
    assert type(latest["int"]) is int and type(latest["float"]) is float, latest
    assert latest["t"] is True and latest["f"] is False, latest


TEXTS = {
    "utf8": "héllo wörld ✓ 日本語 🚀 Ωμέγα",
    "quotes": 'say "hi" and \'bye\' \\ back\\slash',
    "sql1": "'; DROP TABLE telemetry; --",
    "sql2": "Robert'); DELETE FROM messages WHERE 1=1;--",
    "json": '{"nested": [1, 2, {"x": null}]}',
    "ctrl": "line\nbreak\ttab\rcr\u0001",
    "html": "<script>alert('x')</script>&amp;",
    "path": "$.data[0]..x",
    "max-ascii": "a" * 1024,
    "max-utf8": "é" * 512,   # 1024 bytes
}


def test_text_round_trips_byte_exact(dev):
    body = dev.post(TEXTS)
    assert body["points"] == len(TEXTS)
    r = dev.api.get(f"/telemetry/{dev.id}")
    m = expect(r, 200)["data"][0]["measurements"]
    for k, v in TEXTS.items():
        assert m.get(k) == v, f"{k}: sent {v!r}, got {m.get(k)!r}"
        assert m[k].encode() == v.encode()
    latest = expect(dev.api.get(f"/telemetry/{dev.id}/latest"), 200)["latest_data"]
    assert latest == TEXTS, latest


def test_boundaries_accepted(dev):
    now = now_ms()
    cases = {
        "name-64": {"data": {"n" * 64: 1}},
        "name-chars": {"data": {"Az09_.-": 1, "a.b.c": 2, "-": 3, "_": 4, "42": 5}},
        "100-measurements": {"data": {f"m{i}": i for i in range(100)}},
        "string-1024": {"data": {"s": "x" * 1024}},
        "string-1024-utf8": {"data": {"s": "€" * 341 + "a"}},  # 1024 bytes
        "100-strings-of-1024": {"data": {f"s{i:02d}": chr(65 + i % 26) * 1024 for i in range(100)}},
        "32-metadata": {"data": {"a": 1}, "metadata": {f"k{i}": "v" for i in range(32)}},
        "metadata-null": {"data": {"a": 1}, "metadata": None},
        "metadata-empty": {"data": {"a": 1}, "metadata": {}},
        "timestamp-null": {"data": {"a": 1}, "timestamp": None},
        "ts-23h-ahead": {"data": {"a": 1}, "timestamp": iso(now + 23 * HOUR)},
        "ts-recent": {"data": {"a": 1}, "timestamp": iso(now - 5 * DAY)},
        "extra-field": {"data": {"a": 1}, "unknown": "ignored"},
    }
    failures = []
    for label, body in cases.items():
        r = dev.send(body)
        if r.status_code != 201:
            failures.append(f"[{label}] {describe(r)}")
    assert not failures, "\n\n".join(failures)
    recs = history(dev.api, dev.id, **wide())["data"]
    assert len(recs) == len(cases), recs
    for label in ("100-measurements", "100-strings-of-1024"):
        want = cases[label]["data"]
        assert any(rec["measurements"] == want for rec in recs), f"{label} did not round-trip"


def test_metadata_round_trip(dev):
    meta = {"location": "roof", "unit": "°C", "note": 'a "quoted" \'value\'', "sql": "1' OR '1'='1"}
    dev.post({"temp": 21.5}, metadata=meta)
    dev.post({"temp": 22.5})
    data = history(dev.api, dev.id)["data"]
    assert len(data) == 2, data
    with_meta = [rec for rec in data if rec["measurements"] == {"temp": 21.5}]
    without = [rec for rec in data if rec["measurements"] == {"temp": 22.5}]
    assert with_meta and with_meta[0].get("metadata") == meta, data
    assert without and without[0].get("metadata") in (None, {}), data
    for rec in data:
        assert set(rec) <= {"timestamp", "measurements", "metadata"}, rec


def invalid_messages():
    now = now_ms()
    return {
        "no-data": {},
        "only-metadata": {"metadata": {"a": "b"}},
        "data-null": {"data": None},
        "data-empty": {"data": {}},
        "data-array": {"data": [1, 2]},
        "data-string": {"data": "temp=1"},
        "data-number": {"data": 5},
        "data-true": {"data": True},
        "value-object": {"data": {"a": {"b": 1}}},
        "value-array": {"data": {"a": [1]}},
        "value-empty-array": {"data": {"a": []}},
        "value-null": {"data": {"a": None}},
        "one-bad-of-many": {"data": {"a": 1, "b": 2, "c": None}},
        "name-space": {"data": {"a b": 1}},
        "name-empty": {"data": {"": 1}},
        "name-65": {"data": {"n" * 65: 1}},
        "name-non-ascii": {"data": {"températ": 1}},
        "name-slash": {"data": {"a/b": 1}},
        "name-quote": {"data": {'a"b': 1}},
        "name-dollar": {"data": {"$": 1}},
        "name-newline": {"data": {"a\nb": 1}},
        "string-1025": {"data": {"s": "x" * 1025}},
        "string-1025-utf8": {"data": {"s": "é" * 512 + "a"}},
        "101-measurements": {"data": {f"m{i}": i for i in range(101)}},
        "metadata-int": {"data": {"a": 1}, "metadata": {"k": 1}},
        "metadata-bool": {"data": {"a": 1}, "metadata": {"k": True}},
        "metadata-null-value": {"data": {"a": 1}, "metadata": {"k": None}},
        "metadata-nested": {"data": {"a": 1}, "metadata": {"k": {"x": "y"}}},
        "metadata-array": {"data": {"a": 1}, "metadata": ["x"]},
        "metadata-string": {"data": {"a": 1}, "metadata": "x"},
        "metadata-33": {"data": {"a": 1}, "metadata": {f"k{i}": "v" for i in range(33)}},
        "metadata-value-257": {"data": {"a": 1}, "metadata": {"k": "v" * 257}},
        "metadata-key-65": {"data": {"a": 1}, "metadata": {"k" * 65: "v"}},
        "ts-garbage": {"data": {"a": 1}, "timestamp": "yesterday"},
        "ts-empty": {"data": {"a": 1}, "timestamp": ""},
        "ts-number": {"data": {"a": 1}, "timestamp": now // 1000},
        "ts-bool": {"data": {"a": 1}, "timestamp": True},
        "ts-object": {"data": {"a": 1}, "timestamp": {}},
        "ts-month-13": {"data": {"a": 1}, "timestamp": "2026-13-01T00:00:00Z"},
        "ts-feb-30": {"data": {"a": 1}, "timestamp": "2025-02-30T00:00:00Z"},
        "ts-hour-25": {"data": {"a": 1}, "timestamp": "2025-01-01T25:00:00Z"},
        "ts-trailing": {"data": {"a": 1}, "timestamp": iso(now) + "x"},
        "ts-relative": {"data": {"a": 1}, "timestamp": "-1h"},
        "ts-before-2000": {"data": {"a": 1}, "timestamp": "1999-12-31T23:59:59.999Z"},
        "ts-1970": {"data": {"a": 1}, "timestamp": "1970-01-01T00:00:00Z"},
        "ts-2-days-ahead": {"data": {"a": 1}, "timestamp": iso(now + 2 * DAY)},
        "ts-25h-ahead": {"data": {"a": 1}, "timestamp": iso(now + 25 * HOUR)},
        "ts-year-9999": {"data": {"a": 1}, "timestamp": "9999-12-31T23:59:59Z"},
    }


def test_invalid_messages_rejected(bdev):
    expect_rejects(bdev.send, invalid_messages(), 400)
    recs = history(bdev.api, bdev.id, **wide())["data"]
    assert recs == [], f"rejected messages were stored: {recs}"


RAW_INVALID = {
    "empty-body": "",
    "truncated": '{"data": {"a": 1}',
    "garbage": "data=1",
    "trailing-comma": '{"data": {"a": 1,}}',
    "single-quotes": "{'data': {'a': 1}}",
    "nan": '{"data": {"a": NaN}}',
    "infinity": '{"data": {"a": Infinity}}',
    "overflow-real": '{"data": {"a": 1e400}}',
    "duplicate-name": '{"data": {"a": 1, "a": 2}}',
    "nul-in-string": '{"data": {"a": "x\\u0000y"}}',
    "array-body": '[{"data": {"a": 1}}]',
    "number-body": "42",
    "string-body": '"data"',
    "null-body": "null",
    "bad-utf8": b'{"data": {"a": "\xff\xfe"}}',
}


def test_invalid_bodies_rejected(bdev):
    expect_rejects(lambda body: bdev.api.post("/telemetry", data=body,
                                              headers={"Content-Type": "application/json"}),
                   RAW_INVALID, 400)
    assert history(bdev.api, bdev.id, **wide())["data"] == []


def test_missing_or_invalid_key_is_401(bdev, bearer_server):
    api = bearer_server.api
    body = {"data": {"a": 1}}
    cases = {
        "no-key": {},
        "empty-key": {"X-API-Key": ""},
        "wrong-key": {"X-API-Key": "A" * 32},
        "truncated-key": {"X-API-Key": bdev.key[:-1]},
        "key-plus-char": {"X-API-Key": bdev.key + "x"},
        "long-key": {"X-API-Key": "k" * 5000},
        "bearer-instead": {"Authorization": f"Bearer {bdev.key}"},
        "admin-token-instead": bearer_server.admin_headers,
    }
    for path in ("/telemetry", "/telemetry/batch"):
        payload = body if path == "/telemetry" else [body]
        expect_rejects(lambda h: api.post(path, json=payload, headers=h), cases, 401)
    assert history(bdev.api, bdev.id, **wide())["data"] == []


def test_device_in_maintenance_is_403(dev, srv, owner):
    dev.post({"a": 1})
    r = srv.admin.put(f"/admin/devices/{dev.id}/status", json={"status": "maintenance"})
    expect(r, 200)
    expect_error(dev.send({"data": {"a": 2}}), 403)
    expect_error(dev.api.post("/telemetry/batch", json=[{"data": {"a": 3}}]), 403)
    # switched off by an admin, the key reads nothing either; the owner
    # reads, and nothing of the refused messages is there
    expect_error(dev.api.get(f"/telemetry/{dev.id}"), 403)
    data = history(owner.api, dev.id)["data"]
    assert [rec["measurements"] for rec in data] == [{"a": 1}], data
    expect(srv.admin.put(f"/admin/devices/{dev.id}/status", json={"status": "active"}), 200)
    dev.post({"a": 4})
    data = history(dev.api, dev.id)["data"]
    assert sorted(rec["measurements"]["a"] for rec in data) == [1, 4], data


def test_inactive_device_becomes_active_on_first_message(dev, srv):
    r = srv.admin.get(f"/admin/devices/{dev.id}")
    assert expect(r, 200)["device"]["status"] == "inactive", describe(r)
    dev.post({"a": 1})
    r = srv.admin.get(f"/admin/devices/{dev.id}")
    assert expect(r, 200)["device"]["status"] == "active", describe(r)
    # the device itself may switch off and on again; the next message activates it
    expect(dev.api.put("/devices/config", json={"status": "inactive"}), 200)
    dev.batch([{"data": {"a": 2}}])
    r = srv.admin.get(f"/admin/devices/{dev.id}")
    assert expect(r, 200)["device"]["status"] == "active", describe(r)
    # switched off by an admin, it stays off: its messages are refused (403)
    expect(srv.admin.put(f"/admin/devices/{dev.id}/status", json={"status": "inactive"}), 200)
    expect_error(dev.api.post("/telemetry/batch", json=[{"data": {"a": 3}}]), 403)
    r = srv.admin.get(f"/admin/devices/{dev.id}")
    assert expect(r, 200)["device"]["status"] == "inactive", describe(r)


# --------------------------------------------------------------------------
# POST /telemetry/batch
# --------------------------------------------------------------------------

@pytest.mark.parametrize("wrap", [False, True], ids=["array", "messages-object"])
def test_batch_forms(dev, wrap):
    base = now_ms() - 30 * MIN
    msgs = [{"data": {"i": 0, "x": 1.5}, "timestamp": iso(base + 2000)},
            {"data": {"i": 1}, "timestamp": iso(base)},
            {"data": {"i": 2, "s": "str"}, "metadata": {"m": "v"}, "timestamp": iso(base + 1000)}]
    body = dev.batch(msgs, wrap=wrap)
    assert body["device_id"] == dev.id and body["device_name"] == dev.name, body
    assert body["stored"] is True, body
    assert body["accepted"] == 3, body
    assert body["points"] == 5, body
    assert body["first_timestamp"] == iso(base), body
    assert body["last_timestamp"] == iso(base + 2000), body
    data = history(dev.api, dev.id)["data"]
    assert [rec["measurements"]["i"] for rec in data] == [0, 2, 1], data
    assert stamps_of(data) == [iso(base + 2000), iso(base + 1000), iso(base)]
    assert data[1]["metadata"] == {"m": "v"}, data


def test_batch_of_1000_is_stored_whole(dev):
    msgs = [{"data": {"seq": i, "v": i * 0.5}} for i in range(1000)]
    body = dev.batch(msgs)
    assert body["accepted"] == 1000 and body["points"] == 2000, body
    # no timestamps: every message shares the arrival time; paging must still
    # return each exactly once
    recs = read_all(dev.api, f"/telemetry/{dev.id}", limit=300)
    seqs = [rec["measurements"]["seq"] for rec in recs]
    assert len(seqs) == 1000 and sorted(seqs) == list(range(1000)), \
        f"{len(seqs)} records, {len(set(seqs))} distinct"
    assert len(set(stamps_of(recs))) == 1


def test_batch_size_limits(bdev):
    one = {"data": {"a": 1}}
    cases = {
        "1001": [one] * 1001,
        "1001-wrapped": {"messages": [one] * 1001},
        "empty": [],
        "empty-wrapped": {"messages": []},
        "messages-null": {"messages": None},
        "messages-object": {"messages": {"data": {"a": 1}}},
        "messages-string": {"messages": "x"},
        "no-messages-key": {"data": {"a": 1}},
        "object-empty": {},
        "number": 7,
        "string": "batch",
        "null": None,
    }
    expect_rejects(lambda b: bdev.api.post("/telemetry/batch", json=b), cases, 400)
    expect_rejects(lambda b: bdev.api.post("/telemetry/batch", data=b), {"malformed": "[{"}, 400)
    assert history(bdev.api, bdev.id, **wide())["data"] == []


def test_batch_with_one_bad_message_stores_nothing(bdev):
    good = {"data": {"a": 1}}
    bad_ones = {
        "null-value": {"data": {"a": None}},
        "no-data": {"metadata": {"k": "v"}},
        "bad-name": {"data": {"a b": 1}},
        "bad-ts": {"data": {"a": 1}, "timestamp": "1999-01-01T00:00:00Z"},
        "not-object": 5,
        "array": [good],
    }
    failures = []
    for label, bad in bad_ones.items():
        for pos in (0, 2, 4):
            msgs = [dict(good, data={"a": i}) for i in range(5)]
            msgs[pos] = bad
            r = bdev.api.post("/telemetry/batch", json=msgs)
            try:
                body = expect_error(r, 400)
                assert f"messages[{pos}]" in body["message"] + body["error"], \
                    f"error does not name messages[{pos}]\n{describe(r)}"
            except AssertionError as e:
                failures.append(f"[{label} at {pos}] {e}")
    assert not failures, "\n\n".join(failures)
    recs = history(bdev.api, bdev.id, **wide())["data"]
    assert recs == [], f"part of a refused batch was stored: {recs[:5]}"


# --------------------------------------------------------------------------
# Per-device rate limit
# --------------------------------------------------------------------------

def test_device_rate_limit(start_server):
    s = start_server(env={"IOTFLOW_DEVICE_RATE_LIMIT": "3"})
    owner = make_user(s, "bearer")
    d1, d2 = new_device(owner), new_device(owner)
    d1.post({"n": 1})
    d1.batch([{"data": {"n": 2}}, {"data": {"n": 3}}])   # a batch counts once
    d1.post({"n": 4})
    for label, send in (("single", lambda: d1.send({"data": {"n": 5}})),
                        ("batch", lambda: d1.api.post("/telemetry/batch", json=[{"data": {"n": 6}}]))):
        r = send()
        expect_error(r, 429)
        ra = r.headers.get("Retry-After")
        assert ra is not None and ra.isdigit() and 1 <= int(ra) <= 60, \
            f"[{label}] Retry-After must be 1..60 seconds\n{describe(r)}"
    # the other device has its own budget
    for n in range(3):
        d2.post({"n": n})
    expect_error(d2.send({"data": {"n": 9}}), 429)
    data = history(d1.api, d1.id)["data"]
    assert sorted(rec["measurements"]["n"] for rec in data) == [1, 2, 3, 4], data


def test_device_byte_rate_limit(start_server):
    """IOTFLOW_DEVICE_BYTE_RATE_LIMIT: body bytes per device per minute (a
    fixed window: the sequence is retried on a fresh device if a minute
    boundary fell inside it)."""
    s = start_server(env={"IOTFLOW_DEVICE_BYTE_RATE_LIMIT": "2000",
                          "IOTFLOW_DEVICE_RATE_LIMIT": "0"})
    owner = make_user(s, "bearer")
    body = {"data": {"text": "y" * 560}}           # ~580 bytes of JSON
    for _attempt in range(3):
        d1, d2 = new_device(owner), new_device(owner)
        minute = now_ms() // MIN
        codes = [d1.send(body).status_code for _ in range(4)]   # 0, 580, 1160, 1740 < 2000
        refused = d1.send(body)
        other = d2.send(body).status_code
        if now_ms() // MIN == minute:
            break
    assert codes == [201] * 4, codes
    expect_error(refused, 429)
    ra = refused.headers.get("Retry-After")
    assert ra is not None and ra.isdigit() and 1 <= int(ra) <= 60, describe(refused)
    assert other == 201, "the other device has its own budget"
    assert len(history(d1.api, d1.id)["data"]) == 4


# --------------------------------------------------------------------------
# GET /telemetry/{id}
# --------------------------------------------------------------------------

def test_history_newest_first_one_record_per_message(dev, owner):
    base = now_ms() - 50 * MIN
    order = [3, 0, 4, 1, 2]        # posted out of time order
    for i in order:
        dev.post({"i": i, "x": i * 1.5}, timestamp=iso(base + i * 10 * MIN))
    r = owner.api.get(f"/telemetry/{dev.id}")
    body = expect(r, 200)
    assert body["device_id"] == dev.id and body["device_name"] == dev.name, describe(r)
    assert body["count"] == 5 and body["limit"] == 1000, describe(r)
    assert body["next_cursor"] is None, describe(r)
    assert [rec["measurements"]["i"] for rec in body["data"]] == [4, 3, 2, 1, 0], describe(r)
    for rec in body["data"]:
        assert set(rec) == {"timestamp", "measurements"}, rec
        i = rec["measurements"]["i"]
        assert rec["timestamp"] == iso(base + i * 10 * MIN), rec
        assert rec["measurements"] == {"i": i, "x": i * 1.5}, rec


def test_history_time_windows(dev):
    now = now_ms()
    ages = {"20m": 20 * MIN, "2h": 2 * HOUR, "12h": 12 * HOUR, "3d": 3 * DAY, "20d": 20 * DAY}
    dev.batch([{"data": {"age": k}, "timestamp": iso(now - v)} for k, v in ages.items()])
    dev.post({"age": "now"})
    now = now_ms()
    recent = {"now", "20m"}
    day = recent | {"2h", "12h"}
    cases = {
        "default": ({}, recent),
        "-30s": ({"start_time": "-30s"}, {"now"}),
        "-15m": ({"start_time": "-15m"}, {"now"}),
        "-1h": ({"start_time": "-1h"}, recent),
        "-24h": ({"start_time": "-24h"}, day),
        "-7d": ({"start_time": "-7d"}, day | {"3d"}),
        "-30d": ({"start_time": "-30d"}, day | {"3d", "20d"}),
        "-2w": ({"start_time": "-2w"}, day | {"3d"}),
        "-90m": ({"start_time": "-90m"}, recent),
        "end-now": ({"start_time": "-1h", "end_time": "now"}, recent),
        "start-now": ({"start_time": "now"}, set()),
        "end-relative": ({"start_time": "-30d", "end_time": "-1h"}, {"2h", "12h", "3d", "20d"}),
        "iso-both": ({"start_time": iso(now - 13 * HOUR), "end_time": iso(now - HOUR)}, {"2h", "12h"}),
        "iso-offset": ({"start_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                    time.gmtime((now - 4 * DAY) // 1000)),
                        "end_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                  time.gmtime((now - 6 * HOUR) // 1000))},
                       {"12h", "3d"}),
        "iso-date-only": ({"start_time": time.strftime("%Y-%m-%d", time.gmtime((now - 25 * DAY) // 1000)),
                           "end_time": iso(now - 10 * DAY)}, {"20d"}),
    }
    failures = []
    for label, (params, want) in cases.items():
        r = dev.api.get(f"/telemetry/{dev.id}", params=params)
        try:
            body = expect(r, 200)
            got = [rec["measurements"]["age"] for rec in body["data"]]
            assert sorted(got) == sorted(want), f"got {got}, want {sorted(want)}\n{describe(r)}"
        except AssertionError as e:
            failures.append(f"[{label}] {e}")
    assert not failures, "\n\n".join(failures)


BAD_TIMES = ["yesterday", "-5x", "-", "--1h", "1h", "-1.5h", "-h", "now+1h", "NOW ", "",
             "2026-13-01T00:00:00Z", "2026-01-01T00:00:00Zjunk", "-99999999999d"]


def test_history_bad_time_parameters(dev):
    cases = {f"start={t!r}": {"start_time": t} for t in BAD_TIMES}
    cases.update({f"end={t!r}": {"start_time": "-1h", "end_time": t} for t in BAD_TIMES})
    cases["end-before-start"] = {"start_time": "-1h", "end_time": "-2h"}
    cases["end-before-start-iso"] = {"start_time": iso(now_ms() - HOUR),
                                     "end_time": iso(now_ms() - 2 * HOUR)}
    expect_rejects(lambda p: dev.api.get(f"/telemetry/{dev.id}", params=p), cases, 400)


def test_history_limit(dev):
    base = now_ms() - 40 * MIN
    dev.batch([{"data": {"i": i}, "timestamp": iso(base + i * 1000)} for i in range(12)])
    body = history(dev.api, dev.id)
    assert body["limit"] == 1000 and body["count"] == 12 and body["next_cursor"] is None, body
    body = history(dev.api, dev.id, limit=5)
    assert body["limit"] == 5, body
    assert [rec["measurements"]["i"] for rec in body["data"]] == [11, 10, 9, 8, 7], body
    assert isinstance(body["next_cursor"], str), body
    for big in ("10000", "10001", "20000", "99999999999999999999999"):
        body = history(dev.api, dev.id, limit=big)
        assert body["limit"] == 10000 and body["count"] == 12, (big, body)
    bad = {v: {"limit": v} for v in ("-1", "-10000", "abc", "1.5", "", "5x", "0x10")}
    expect_rejects(lambda p: dev.api.get(f"/telemetry/{dev.id}", params=p), bad, 400)


def test_history_cursor_paging_distinct_timestamps(dev, owner):
    base = now_ms() - 50 * MIN
    dev.batch([{"data": {"i": i}, "timestamp": iso(base + i * 7000)} for i in range(25)])
    for client in (dev.api, owner.api):
        for limit in (1, 4, 5, 7, 25, 26):
            recs = read_all(client, f"/telemetry/{dev.id}", limit=limit)
            got = [rec["measurements"]["i"] for rec in recs]
            assert got == list(range(24, -1, -1)), f"limit={limit}: {got}"


def test_history_cursor_paging_same_timestamp(dev):
    ts = iso(now_ms() - 10 * MIN)
    dev.batch([{"data": {"i": i}, "timestamp": ts} for i in range(30)])
    dev.batch([{"data": {"i": 100 + i}} for i in range(7)])  # arrival time, all equal too
    for limit in (1, 3, 4, 10, 29, 30, 37):
        recs = read_all(dev.api, f"/telemetry/{dev.id}", limit=limit)
        got = [rec["measurements"]["i"] for rec in recs]
        assert len(got) == 37 and sorted(got) == list(range(30)) + list(range(100, 107)), \
            f"limit={limit}: {len(got)} records, {len(set(got))} distinct: {got}"
        assert set(got[:7]) == set(range(100, 107)), got


def test_history_bad_cursor(dev):
    dev.post({"a": 1})
    bad = {c: {"cursor": c} for c in ("abc", "123", "12_x", "_5", "1_2_3", "1_", "x_1",
                                      "1.5_2", "99999999999999999999_1", "1 _2")}
    expect_rejects(lambda p: dev.api.get(f"/telemetry/{dev.id}", params=p), bad, 400)


READ_PATHS = ["", "/latest", "/aggregated", "/measurements"]


@pytest.mark.parametrize("suffix", READ_PATHS, ids=["history", "latest", "aggregated", "measurements"])
def test_read_access(suffix, srv, owner, stranger, auth_mode, request):
    d = new_device(owner)
    sibling = new_device(owner)
    d.post({"temperature": 21.5})
    path = f"/telemetry/{d.id}{suffix}"
    allowed = {"own-key": d.api, "owner": owner.api, "admin-token": srv.admin}
    if auth_mode == "bearer":
        allowed["admin-user"] = request.getfixturevalue("admin_user").api
    for label, client in allowed.items():
        r = client.get(path)
        assert r.status_code == 200, f"[{label}]\n{describe(r)}"
    api = srv.api
    expect_rejects(lambda c: c.get(path), {"other-device-key": sibling.api, "other-user": stranger.api}, 403)
    unauth = {"none": api, "bad-key": api.with_headers({"X-API-Key": "B" * 32}),
              "bad-bearer": api.with_headers({"Authorization": "Bearer " + "0" * 40})}
    if auth_mode == "bearer":
        unauth["x-user-id-untrusted"] = api.with_headers({"X-User-ID": owner.user_id})
    else:
        unauth["unknown-x-user-id"] = api.with_headers({"X-User-ID": "f" * 32})
    expect_rejects(lambda c: c.get(path), unauth, 401)
    missing = {f"{who}-{i}": (c, i) for who, c in (("owner", owner.api), ("admin", srv.admin))
               for i in ("999999999", "0", "abc", "-1")}
    expect_rejects(lambda ci: ci[0].get(f"/telemetry/{ci[1]}{suffix}"), missing, 404)


# --------------------------------------------------------------------------
# GET /telemetry/{id}/latest
# --------------------------------------------------------------------------

def check_latest(client, dev, expected, stamps, newest, what=""):
    """GET latest and compare values, per-measurement timestamps and the
    overall (newest) timestamp."""
    r = client.get(f"/telemetry/{dev.id}/latest")
    body = expect(r, 200)
    assert body["device_id"] == dev.id and body["device_name"] == dev.name, describe(r)
    assert body["latest_data"] == expected, f"{what}: latest_data wrong\n{describe(r)}"
    assert body["timestamp"] == iso(newest), f"{what}: timestamp wrong\n{describe(r)}"
    m = body["measurements"]
    assert set(m) == set(expected), f"{what}\n{describe(r)}"
    for k, v in expected.items():
        assert m[k] == {"value": v, "timestamp": iso(stamps[k])}, f"{what}: {k}\n{describe(r)}"
        assert type(body["latest_data"][k]) is type(v), f"{what}: type of {k}\n{describe(r)}"


@pytest.mark.parametrize("how", ["arrival-time", "explicit-ts", "batch"])
def test_latest_merges_measurements_of_several_messages(dev, how):
    """The common case: a device sends {a, b} and then {a}: latest is the
    newer a and the older b."""
    t1, t2 = now_ms() - 2 * MIN, now_ms() - MIN
    first = {"a": 1, "b": 2.5, "on": True, "label": "first"}
    second = {"a": 3, "label": 'sec"ond'}
    if how == "arrival-time":
        t1 = ms_of(dev.post(first)["timestamp"])
        time.sleep(0.01)
        t2 = ms_of(dev.post(second)["timestamp"])
    elif how == "explicit-ts":
        dev.post(first, timestamp=iso(t1))
        dev.post(second, timestamp=iso(t2))
    else:
        dev.batch([{"data": first, "timestamp": iso(t1)}, {"data": second, "timestamp": iso(t2)}])
    exp = {"a": 3, "b": 2.5, "on": True, "label": 'sec"ond'}
    st = {"a": t2, "b": t1, "on": t1, "label": t2}
    check_latest(dev.api, dev, exp, st, t2, what="first read")
    check_latest(dev.api, dev, exp, st, t2, what="second read")


def test_latest_older_message_does_not_replace_newer(dev, owner, srv):
    now = now_ms()
    t1, t_old, t_older, t_new = now - 10 * MIN, now - 30 * MIN, now - 40 * MIN, now - 1 * MIN
    dev.post({"temp": 20, "hum": 50}, timestamp=iso(t1))
    # a device catching up before anyone read: same measurements, older
    dev.post({"temp": 99, "hum": 99}, timestamp=iso(t_old))
    exp, st = {"temp": 20, "hum": 50}, {"temp": t1, "hum": t1}
    check_latest(dev.api, dev, exp, st, t1, what="older message before any read")
    check_latest(dev.api, dev, exp, st, t1, what="asked again")
    # and after latest was read (and cached)
    dev.post({"temp": 98, "hum": 98, "pressure": 1000}, timestamp=iso(t_old + MIN))
    exp["pressure"], st["pressure"] = 1000, t_old + MIN
    check_latest(dev.api, dev, exp, st, t1, what="older message after a read")
    check_latest(dev.api, dev, exp, st, t1, what="asked again")
    dev.batch([{"data": {"temp": 97, "pressure": 999}, "timestamp": iso(t_older)}])
    check_latest(dev.api, dev, exp, st, t1, what="older batch")
    # a newer message replaces only what it carries
    dev.post({"temp": 22}, timestamp=iso(t_new))
    exp["temp"], st["temp"] = 22, t_new
    check_latest(dev.api, dev, exp, st, t_new, what="newer partial message")
    for client in (owner.api, srv.admin):
        check_latest(client, dev, exp, st, t_new, what="read by owner/admin")


def test_latest_entry_is_bounded(dev, owner):
    """A cached latest entry holds at most 1000 names: merging new names
    past that drops it, and a read of more names does not refill it, so
    every read goes to the store (bounded by the page budget) instead of
    copying an ever larger entry."""
    dev.post({"a": 1})
    sources = [expect(owner.api.get(f"/telemetry/{dev.id}/latest"), 200)["source"] for _ in range(2)]
    if sources != ["store", "cache"]:
        pytest.skip(f"a cache that does not merge (shared): {sources}")
    for m in range(11):                                # 1 + 1100 names, one message each
        dev.post({f"n{m}_{i}": i for i in range(100)})
    for _ in range(2):
        r = owner.api.get(f"/telemetry/{dev.id}/latest")
        body = expect(r, 200)
        assert body["source"] == "store", f"source {body['source']}, {len(body['latest_data'])} names"
        assert len(body["latest_data"]) == 1101 and body["latest_data"]["n10_99"] == 99
    # a device within the bound is still served from its entry
    dev2 = new_device(owner)
    for m in range(10):                                # exactly 1000 names
        dev2.post({f"m{m}_{i}": i for i in range(100)})
    sources = [expect(owner.api.get(f"/telemetry/{dev2.id}/latest"), 200)["source"] for _ in range(2)]
    assert sources == ["store", "cache"], sources


def test_latest_404_without_data(dev, owner, srv):
    for client in (dev.api, owner.api, srv.admin):
        r = client.get(f"/telemetry/{dev.id}/latest")
        expect_error(r, 404)


# --------------------------------------------------------------------------
# GET /telemetry/{id}/aggregated
# --------------------------------------------------------------------------

AGGS = ("mean", "sum", "min", "max", "count", "first", "last")


def expected_buckets(samples, lo, hi, width, fn):
    buckets = {}
    for ts, v in sorted(samples):              # by time: first and last
        if lo <= ts <= hi:
            buckets.setdefault(ts // width * width, []).append(v)
    out = []
    for start in sorted(buckets):
        vs = buckets[start]
        value = {"mean": sum(vs) / len(vs), "sum": sum(vs), "min": min(vs), "max": max(vs),
                 "count": len(vs), "first": vs[0], "last": vs[-1]}[fn]
        out.append((iso(start), value, len(vs)))
    return out


def test_aggregated_known_values(dev, owner):
    H = (now_ms() - 3 * HOUR) // HOUR * HOUR       # a whole hour, at least 2 h ago
    field = "t.emp-1"
    offsets = [(60_000, 10), (90_000, 20), (300_000, 30.5), (3_540_000, -4),
               (4_200_000, 100), (4_220_000, 200), (7_199_000, 5)]
    samples = [(H + off, v) for off, v in offsets]
    msgs = [{"data": {field: v, "other": 1000 + v, "label": "x"}, "timestamp": iso(ts)}
            for ts, v in samples]
    msgs.append({"data": {"other": -1e6}, "timestamp": iso(H + 120_000)})   # lacks the field
    msgs.append({"data": {field: "text"}, "timestamp": iso(H + 130_000)})   # not numeric
    dev.batch(msgs[:4])
    for m in msgs[4:]:
        dev.post(m["data"], timestamp=m["timestamp"])
    ranges = {"aligned": (H, H + 2 * HOUR), "unaligned": (H + 75_000, H + 4_210_000)}
    failures = []
    for rname, (lo, hi) in ranges.items():
        for window, width in (("1m", MIN), ("1h", HOUR)):
            for fn in AGGS:
                params = {"field": field, "aggregation": fn, "window": window,
                          "start_time": iso(lo), "end_time": iso(hi)}
                r = owner.api.get(f"/telemetry/{dev.id}/aggregated", params=params)
                try:
                    body = expect(r, 200)
                    assert (body["field"], body["aggregation"], body["window"]) == (field, fn, window), \
                        describe(r)
                    got = [(b["timestamp"], b["value"], b["count"]) for b in body["data"]]
                    want = expected_buckets(samples, lo, hi, width, fn)
                    assert [g[0] for g in got] == [w[0] for w in want], \
                        f"windows {[g[0] for g in got]} != {[w[0] for w in want]}\n{describe(r)}"
                    for g, w in zip(got, want):
                        assert g[1] == pytest.approx(w[1]) and g[2] == w[2], \
                            f"window {g[0]}: got value {g[1]} count {g[2]}, want {w[1]} / {w[2]}\n{describe(r)}"
                    assert body["count"] == len(want), describe(r)
                except AssertionError as e:
                    failures.append(f"[{rname} {window} {fn}] {e}")
    # the default range (-24h) over whole hours
    for fn in AGGS:
        r = dev.api.get(f"/telemetry/{dev.id}/aggregated", params={"field": field, "aggregation": fn})
        try:
            body = expect(r, 200)
            got = [(b["timestamp"], b["value"], b["count"]) for b in body["data"]]
            want = expected_buckets(samples, 0, now_ms(), HOUR, fn)
            assert [g[0] for g in got] == [w[0] for w in want], describe(r)
            for g, w in zip(got, want):
                assert g[1] == pytest.approx(w[1]) and g[2] == w[2], describe(r)
        except AssertionError as e:
            failures.append(f"[default range {fn}] {e}")
    assert not failures, f"{len(failures)} aggregate queries wrong:\n\n" + "\n\n".join(failures)


def test_numbers_come_back_exact(dev, owner):
    """An integer stays an integer (2^53 + 1 exact) and a real a real in its
    shortest round-trip form (-0.0 keeps its sign, 1.0 stays 1.0), in
    history, latest (from the store and from the cache) and aggregates."""
    big = 2**53 + 1
    H = (now_ms() - 3 * HOUR) // HOUR * HOUR          # a whole hour: rollups serve it
    data = [({"n": big, "neg": -0.0, "r": 0.473419, "one": 1.0, "tiny": 5e-324}, H + 60_000),
            ({"n": big + 2, "r": 0.1}, H + 120_000),
            ({"n": -3, "r": 2.5}, H + 180_000)]
    body = "[" + ",".join('{"data":{%s},"timestamp":"%s"}' % (
        ",".join(f'"{k}":{v!r}' for k, v in d.items()), iso(ts)) for d, ts in data) + "]"
    r = dev.api.post("/telemetry/batch", data=body, headers={"Content-Type": "application/json"})
    expect(r, 201)
    r = owner.api.get(f"/telemetry/{dev.id}", params={"start_time": iso(H), "end_time": iso(H + HOUR)})
    recs = {rec["timestamp"]: rec["measurements"] for rec in expect(r, 200)["data"]}
    first = recs[iso(H + 60_000)]
    assert first["n"] == big and type(first["n"]) is int, describe(r)
    assert first["neg"] == 0.0 and str(first["neg"]) == "-0.0", describe(r)
    assert type(first["one"]) is float and first["tiny"] == 5e-324, describe(r)
    assert '"r":0.473419' in r.text and "0.47341899999999998" not in r.text, describe(r)
    sources = []
    for _ in range(2):                                 # the store, then the refilled cache
        r = owner.api.get(f"/telemetry/{dev.id}/latest")
        body = expect(r, 200)
        sources.append(body["source"])
        latest = body["latest_data"]
        assert latest["n"] == -3 and type(latest["n"]) is int, describe(r)
        assert str(latest["neg"]) == "-0.0" and str(latest["one"]) == "1.0", describe(r)
        assert '"tiny":5e-324' in r.text and '"r":2.5' in r.text, describe(r)
    assert sources == ["store", "cache"], sources
    dev.post({"n": big + 4, "one": 1.0, "neg": -0.0})   # the ingest writer's cache entry
    r = owner.api.get(f"/telemetry/{dev.id}/latest")
    latest = expect(r, 200)["latest_data"]
    assert latest["n"] == big + 4 and str(latest["one"]) == "1.0" and str(latest["neg"]) == "-0.0", \
        describe(r)
    want = {"sum": 2 * big - 1, "min": -3, "max": big + 2, "first": big, "last": -3, "count": 3}
    for window, lo in (("1h", H - HOUR), ("1m", H)):   # rollups, then raw samples
        for fn, value in want.items():
            r = owner.api.get(f"/telemetry/{dev.id}/aggregated",
                              params={"field": "n", "aggregation": fn, "window": window,
                                      "start_time": iso(lo), "end_time": iso(H + HOUR)})
            got = [b["value"] for b in expect(r, 200)["data"]]
            if window == "1m":
                got = [sum(got)] if fn in ("sum", "count") else \
                      [min(got)] if fn == "min" else [max(got)] if fn == "max" else \
                      [got[0]] if fn == "first" else [got[-1]]
            assert got == [value] and all(type(g) is int for g in got), \
                f"[{window} {fn}] {got} != [{value}]\n{describe(r)}"
        r = owner.api.get(f"/telemetry/{dev.id}/aggregated",
                          params={"field": "r", "aggregation": "sum", "window": window,
                                  "start_time": iso(lo), "end_time": iso(H + HOUR)})
        got = [b["value"] for b in expect(r, 200)["data"]]
        assert all(type(g) is float for g in got) and sum(got) == pytest.approx(3.073419), describe(r)
        r = owner.api.get(f"/telemetry/{dev.id}/aggregated",
                          params={"field": "n", "aggregation": "mean", "window": window,
                                  "start_time": iso(lo), "end_time": iso(H + HOUR)})
        assert all(type(b["value"]) is float for b in expect(r, 200)["data"]), describe(r)
    # iot_reply_json writes reals shortest: min of r is 0.1, not 0.10000000000000001
    r = owner.api.get(f"/telemetry/{dev.id}/aggregated",
                      params={"field": "r", "aggregation": "min", "window": "1d",
                              "start_time": iso(H - HOUR), "end_time": iso(H + HOUR)})
    assert [b["value"] for b in expect(r, 200)["data"]] == [0.1], describe(r)
    assert '"value":0.1,' in r.text, describe(r)


def test_aggregated_non_finite_is_null(dev, owner):
    """A sum or mean past the doubles (two samples of 1.7e308) is reported
    as null; the window is not dropped from the answer."""
    H = (now_ms() - 3 * HOUR) // HOUR * HOUR
    for i in range(2):
        dev.post({"x": 1.7e308}, timestamp=iso(H + 1000 * (i + 1)))
    for window in ("1h", "1m"):                        # rollups, then raw samples
        for fn, value in (("sum", None), ("mean", None), ("max", 1.7e308), ("count", 2)):
            r = owner.api.get(f"/telemetry/{dev.id}/aggregated",
                              params={"field": "x", "aggregation": fn, "window": window,
                                      "start_time": iso(H), "end_time": iso(H + HOUR - 1)})
            body = expect(r, 200)
            assert [b["value"] for b in body["data"]] == [value], f"[{window} {fn}] {describe(r)}"
            assert body["data"][0]["count"] == 2, describe(r)


def test_delete_keeps_int64_extremes_exact(dev, owner):
    """A range delete recomputes buckets holding INT64_MIN (no SQL abs() to
    overflow: it answered 500 for good) and keeps an int64 sum exact past
    2^53 (2^60 + 3 stayed a REAL)."""
    H = (now_ms() - 3 * HOUR) // HOUR * HOUR
    body = '{"data":{"m":-9223372036854775808},"timestamp":"%s"}' % iso(H + 1000)
    expect(dev.api.post("/telemetry", data=body, headers={"Content-Type": "application/json"}), 201)
    for i, v in enumerate((2**60, 3, 5)):
        dev.post({"b": v}, timestamp=iso(H + 2000 + 1000 * i))
    dev.post({"m": 1}, timestamp=iso(H + 10_000))
    for ts in (H + 4000, H + 10_000):                  # the 5 of b, the 1 of m
        r = owner.api.delete(f"/telemetry/{dev.id}", json={"start_time": iso(ts), "stop_time": iso(ts)})
        expect(r, 200)
    for field, fn, value in (("b", "sum", 2**60 + 3), ("m", "min", -2**63), ("m", "sum", -2**63)):
        for window in ("1h", "1d"):
            r = owner.api.get(f"/telemetry/{dev.id}/aggregated",
                              params={"field": field, "aggregation": fn, "window": window,
                                      "start_time": iso(H), "end_time": iso(H + HOUR - 1)})
            got = [b["value"] for b in expect(r, 200)["data"]]
            assert got == [value] and type(got[0]) is int, f"[{field} {fn} {window}] {describe(r)}"


def test_aggregated_invalid_parameters(dev):
    dev.post({"temperature": 1})
    bad = {
        "agg-median": {"aggregation": "median"},
        "agg-empty": {"aggregation": ""},
        "agg-sql": {"aggregation": "sum); DROP TABLE x;--"},
        "window-0m": {"window": "0m"},
        "window-0s": {"window": "0s"},
        "window-1x": {"window": "1x"},
        "window-abc": {"window": "abc"},
        "window-empty": {"window": ""},
        "window-unitless": {"window": "60"},
        "window-negative": {"window": "-1m"},
        "window-ms": {"window": "500ms"},
        "window-367d": {"window": "367d"},
        "window-fraction": {"window": "1.5h"},
        "field-space": {"field": "bad name"},
        "field-empty": {"field": ""},
        "field-slash": {"field": "a/b"},
        "field-65": {"field": "f" * 65},
        "field-non-ascii": {"field": "température"},
        "field-quote": {"field": 'a"b'},
        "start-bad": {"start_time": "yesterday"},
        "end-before-start": {"start_time": "-1h", "end_time": "-2h"},
        "too-many-windows": {"window": "1s", "start_time": "-24h"},
    }
    expect_rejects(lambda p: dev.api.get(f"/telemetry/{dev.id}/aggregated", params=p), bad, 400)


# --------------------------------------------------------------------------
# DELETE /telemetry/{id}
# --------------------------------------------------------------------------

def test_delete_range(dev, owner):
    now = now_ms()
    ts = {age: now - age * MIN for age in (50, 40, 30, 20, 10)}
    for n, age in enumerate((50, 40, 30, 20, 10), start=1):
        data = {"temp": n, "x.y-z": n * 10}
        if age == 10:
            data["only_new"] = "yes"
        dev.post(data, timestamp=iso(ts[age]))
    latest = expect(dev.api.get(f"/telemetry/{dev.id}/latest"), 200)
    assert latest["latest_data"] == {"temp": 5, "x.y-z": 50, "only_new": "yes"}, latest

    r = owner.api.delete(f"/telemetry/{dev.id}",
                         json={"start_time": iso(now - 35 * MIN), "stop_time": iso(now - 15 * MIN)})
    body = expect(r, 200)
    assert body["deleted"] == 2 and body["device_id"] == dev.id, describe(r)
    data = history(dev.api, dev.id)["data"]
    assert [rec["measurements"]["temp"] for rec in data] == [5, 2, 1], data
    agg = expect(dev.api.get(f"/telemetry/{dev.id}/aggregated",
                             params={"field": "temp", "aggregation": "sum", "window": "1h",
                                     "start_time": "-2h"}), 200)
    assert sum(b["value"] for b in agg["data"]) == pytest.approx(8), agg
    assert sum(b["count"] for b in agg["data"]) == 3, agg

    # remove the newest: latest falls back to what is left
    body = expect(owner.api.delete(f"/telemetry/{dev.id}",
                                   json={"start_time": iso(now - 12 * MIN), "stop_time": "now"}), 200)
    assert body["deleted"] == 1, body
    r = dev.api.get(f"/telemetry/{dev.id}/latest")
    latest = expect(r, 200)
    assert latest["latest_data"] == {"temp": 2, "x.y-z": 20}, describe(r)
    assert latest["timestamp"] == iso(ts[40]), describe(r)
    assert latest["measurements"]["temp"]["timestamp"] == iso(ts[40]), describe(r)
    data = history(dev.api, dev.id)["data"]
    assert [rec["measurements"]["temp"] for rec in data] == [2, 1], data

    # an empty range deletes nothing; relative forms are accepted
    body = expect(owner.api.delete(f"/telemetry/{dev.id}",
                                   json={"start_time": "-5m", "stop_time": "now"}), 200)
    assert body["deleted"] == 0, body
    body = expect(owner.api.delete(f"/telemetry/{dev.id}",
                                   json={"start_time": "-1h", "stop_time": "now"}), 200)
    assert body["deleted"] == 2, body
    assert history(dev.api, dev.id)["data"] == []
    expect_error(dev.api.get(f"/telemetry/{dev.id}/latest"), 404)


def test_delete_range_invalid(dev, owner):
    dev.post({"a": 1}, timestamp=iso(now_ms() - 10 * MIN))
    path = f"/telemetry/{dev.id}"
    bad = {
        "empty": {},
        "no-stop": {"start_time": "-1h"},
        "no-start": {"stop_time": "now"},
        "start-int": {"start_time": 5, "stop_time": "now"},
        "stop-null": {"start_time": "-1h", "stop_time": None},
        "start-bad": {"start_time": "yesterday", "stop_time": "now"},
        "stop-bad": {"start_time": "-1h", "stop_time": "later"},
        "reversed": {"start_time": "now", "stop_time": "-1h"},
        "empty-strings": {"start_time": "", "stop_time": ""},
    }
    expect_rejects(lambda b: owner.api.delete(path, json=b), bad, 400)
    expect_rejects(lambda b: owner.api.delete(path, data=b),
                   {"malformed": "{", "array": '["-1h", "now"]', "none": ""}, 400)
    assert len(history(dev.api, dev.id)["data"]) == 1


def test_delete_range_access(dev, owner, stranger, srv):
    dev.post({"a": 1}, timestamp=iso(now_ms() - 10 * MIN))
    sibling = new_device(owner)
    path = f"/telemetry/{dev.id}"
    body = {"start_time": "-1h", "stop_time": "now"}
    expect_rejects(lambda c: c.delete(path, json=body),
                   {"other-user": stranger.api, "other-device-key": sibling.api}, 403)
    expect_rejects(lambda c: c.delete(path, json=body),
                   {"none": srv.api, "bad-key": srv.api.with_headers({"X-API-Key": "C" * 32})}, 401)
    expect_error(owner.api.delete("/telemetry/999999999", json=body), 404)
    assert len(history(dev.api, dev.id)["data"]) == 1
    r = srv.admin.delete(path, json=body)
    assert expect(r, 200)["deleted"] == 1, describe(r)


# --------------------------------------------------------------------------
# GET /telemetry/status
# --------------------------------------------------------------------------

STATUS_BASE = {"status", "backend", "total_devices"}


def status_public(body):
    """The public fields: <backend>_available names the telemetry store in
    use (sqlite_available embedded, cassandra_available on Cassandra)."""
    return STATUS_BASE | {f"{body.get('backend')}_available"}


def test_status_is_public_and_counts(bdev, bearer_server, admin_user):
    """Everyone gets the original's fields (status, backend, total_devices,
    <backend>_available); the admin also the stores, ingest counters and
    telemetry totals."""
    s = bearer_server
    r = s.admin.get("/telemetry/status")
    body = expect(r, 200)
    assert status_public(body) <= set(body), describe(r)
    assert body["backend"] in ("sqlite", "cassandra"), describe(r)
    assert body["status"] == "healthy" and body[f"{body['backend']}_available"] is True, describe(r)
    assert isinstance(body["backend"], str) and body["backend"], describe(r)
    stores = body["stores"]
    assert {"telemetry", "registry", "cache"} <= set(stores), describe(r)
    for name, st in stores.items():
        assert st["available"] is True, f"{name}\n{describe(r)}"
        assert isinstance(st["role"], str) and st["role"], f"{name}\n{describe(r)}"
        assert isinstance(st["backend"], str) and st["backend"], f"{name}\n{describe(r)}"
    assert isinstance(body["total_messages"], int) and body["total_messages"] >= 0, describe(r)
    assert {"ingest", "devices_with_data", "durable_fsync"} <= set(body), describe(r)
    before = body["total_messages"]
    bdev.batch([{"data": {"a": i}} for i in range(3)])
    bdev.post({"a": 9})
    assert total_messages(s) >= before + 4
    r = admin_user.api.get("/telemetry/status")         # an is_admin user
    assert "stores" in expect(r, 200), describe(r)
    # no credentials, a device key, a plain user, wrong admin token: public
    plain = make_user(s, "bearer")
    for label, client in (("none", s.api), ("device", bdev.api), ("user", plain.api),
                          ("bad-admin", s.api.with_headers({"Authorization": "admin nope"}))):
        r = client.get("/telemetry/status")
        body = expect(r, 200)
        assert set(body) == status_public(body), f"[{label}]\n{describe(r)}"
        assert body["status"] == "healthy" and body[f"{body['backend']}_available"] is True, \
            describe(r)
        assert isinstance(body["total_devices"], int) and body["total_devices"] >= 2, describe(r)
        assert "Retry-After" not in r.headers, describe(r)


# --------------------------------------------------------------------------
# GET /telemetry/user/{user_id}
# --------------------------------------------------------------------------

def test_user_telemetry_spans_devices(users, stranger, srv):
    user = users.new()
    d1, d2 = new_device(user), new_device(user)
    theirs = new_device(stranger)
    now = now_ms()
    for age, d in ((10, d1), (20, d2), (30, d1), (40, d2), (50, d1)):
        d.post({"age": age}, timestamp=iso(now - age * MIN))
    theirs.post({"age": 15}, timestamp=iso(now - 15 * MIN))
    path = f"/telemetry/user/{user.user_id}"
    for client in (user.api, srv.admin):
        r = client.get(path)
        body = expect(r, 200)
        assert body["user_id"] == user.user_id, describe(r)
        recs = body["telemetry"]
        assert [(rec["device_id"], rec["measurements"]["age"]) for rec in recs] == \
            [(d1.id, 10), (d2.id, 20), (d1.id, 30), (d2.id, 40), (d1.id, 50)], describe(r)
        for rec in recs:
            assert rec["timestamp"] == iso(now - rec["measurements"]["age"] * MIN), rec
        assert body["count"] == 5 and body["total_count"] == 5, describe(r)
        assert body["limit"] == 100 and body["next_cursor"] is None, describe(r)
    # paging
    recs = read_all(user.api, path, list_key="telemetry", limit=2)
    assert [rec["measurements"]["age"] for rec in recs] == [10, 20, 30, 40, 50], recs
    body = expect(user.api.get(path, params={"limit": 2}), 200)
    assert body["count"] == 2 and body["total_count"] == 5, body
    # window
    body = expect(user.api.get(path, params={"start_time": "-35m"}), 200)
    assert [rec["measurements"]["age"] for rec in body["telemetry"]] == [10, 20, 30], body
    assert body["total_count"] == 3, body


def test_user_telemetry_limits(users, srv):
    user = users.new()
    d1, d2 = new_device(user), new_device(user)
    d1.batch([{"data": {"i": i}} for i in range(70)])
    d2.batch([{"data": {"i": i}} for i in range(60)])
    path = f"/telemetry/user/{user.user_id}"
    body = expect(user.api.get(path), 200)
    assert body["count"] == 100 and body["limit"] == 100 and body["total_count"] == 130, \
        {k: v for k, v in body.items() if k != "telemetry"}
    assert isinstance(body["next_cursor"], str), body["next_cursor"]
    for big in ("1000", "1001", "5000"):
        body = expect(user.api.get(path, params={"limit": big}), 200)
        assert body["limit"] == 1000 and body["count"] == 130, (big, body["limit"], body["count"])
    recs = read_all(user.api, path, list_key="telemetry", limit=33)
    got = sorted((rec["device_id"], rec["measurements"]["i"]) for rec in recs)
    assert got == sorted([(d1.id, i) for i in range(70)] + [(d2.id, i) for i in range(60)])
    bad = {v: {"limit": v} for v in ("-1", "abc", "")}
    bad.update({"cursor": {"cursor": "zzz"}, "start": {"start_time": "soon"},
                "reversed": {"start_time": "-1h", "end_time": "-2h"}})
    expect_rejects(lambda p: user.api.get(path, params=p), bad, 400)


def test_user_telemetry_access(shared_user, stranger, srv):
    path = f"/telemetry/user/{shared_user.user_id}"
    expect_error(stranger.api.get(path), 403)
    expect_error(srv.api.get(path), 401)
    d = new_device(shared_user)
    expect_error(d.api.get(path), 401)      # a device key is not a user
    expect(srv.admin.get(path), 200)
    expect_error(srv.admin.get(f"/telemetry/user/{'e' * 32}"), 404)


# --------------------------------------------------------------------------
# Deletion of devices and users; key rotation
# --------------------------------------------------------------------------

def test_device_deletion_removes_telemetry(users, srv):
    user = users.new()
    doomed, kept = new_device(user), new_device(user)
    doomed.batch([{"data": {"i": i}} for i in range(20)])
    doomed.post({"i": 99})
    kept.post({"k": 1})
    before = total_messages(srv)
    expect(srv.admin.delete(f"/admin/devices/{doomed.id}"), 200)
    assert total_messages(srv) == before - 21, "the deleted device's messages are still stored"
    for client in (srv.admin, user.api):
        expect_error(client.get(f"/telemetry/{doomed.id}"), 404)
        expect_error(client.get(f"/telemetry/{doomed.id}/latest"), 404)
    expect_error(doomed.send({"data": {"i": 1}}), 401)
    body = expect(user.api.get(f"/telemetry/user/{user.user_id}"), 200)
    assert [rec["device_id"] for rec in body["telemetry"]] == [kept.id], body
    assert body["total_count"] == 1, body
    # a device registered afterwards (even if it were given the same id)
    # starts empty
    fresh = new_device(user)
    assert history(fresh.api, fresh.id, **wide())["data"] == []
    expect_error(fresh.api.get(f"/telemetry/{fresh.id}/latest"), 404)


def test_user_deletion_removes_telemetry(users, srv):
    user = users.new()
    d1, d2 = new_device(user), new_device(user)
    d1.batch([{"data": {"i": i}} for i in range(10)])
    d2.post({"i": 1})
    before = total_messages(srv)
    expect(srv.admin.delete(f"/users/{user.user_id}"), 200)
    assert total_messages(srv) == before - 11, "the deleted user's messages are still stored"
    for d in (d1, d2):
        expect_error(srv.admin.get(f"/telemetry/{d.id}"), 404)
        expect_error(d.send({"data": {"i": 1}}), 401)
    expect_error(srv.admin.get(f"/telemetry/user/{user.user_id}"), 404)


@pytest.mark.parametrize("by", ["owner", "admin"])
def test_rotate_key(dev, owner, stranger, srv, by):
    dev.post({"a": 1})
    old = dev.api
    expect(old.get(f"/telemetry/{dev.id}"), 200)       # the old key is warm in any cache
    expect_error(stranger.api.post(f"/devices/{dev.id}/rotate-key"), 403)
    client = owner.api if by == "owner" else srv.admin
    r = client.post(f"/devices/{dev.id}/rotate-key")
    body = expect(r, 200)
    new_key = body["api_key"]
    assert isinstance(new_key, str) and len(new_key) == 32 and new_key != dev.key, describe(r)
    new = key_client(srv, new_key)
    expect(new.post("/telemetry", json={"data": {"a": 2}}), 201)
    expect_error(old.post("/telemetry", json={"data": {"a": 3}}), 401)
    expect_error(old.post("/telemetry/batch", json=[{"data": {"a": 3}}]), 401)
    expect_error(old.get(f"/telemetry/{dev.id}"), 401)
    data = history(new, dev.id)["data"]
    assert sorted(rec["measurements"]["a"] for rec in data) == [1, 2], data


# --------------------------------------------------------------------------
# Bounded pages: a byte budget per history page
# --------------------------------------------------------------------------

def vm_kib(server, field):
    """VmHWM / VmRSS of the server process, KiB (from /proc/<pid>/status)."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    pytest.fail(f"{field} not in /proc/{server.proc.pid}/status")


def big_message(i, ts):
    """~100 KB of measurements: 100 strings of 1000 bytes, tagged with i."""
    return {"timestamp": iso(ts),
            "data": {"i": i, **{f"s{k:02d}": f"{i:06d}" + "x" * 994 for k in range(99)}}}


def test_history_page_is_bounded_by_bytes(start_server):
    """Large messages and a big `limit`: the page ends at the byte budget
    with a next_cursor, the server's peak memory barely moves, and paging
    returns every message exactly once (device and per-user history)."""
    budget = 1 << 20
    # Four workers whatever the stores: each worker's malloc arena keeps its
    # own high-water mark, so with a server store's default (8 x CPUs) the
    # sum over workers, not one page, would be measured.
    s = start_server(env={"IOTFLOW_MAX_PAGE_BYTES": str(budget), "IOTFLOW_THREADS": "4",
                          "IOTFLOW_MAX_BODY": str(8 << 20)})
    owner = make_user(s, "bearer")
    d = new_device(owner)
    n, base = 240, now_ms() - 30 * MIN
    for start in range(0, n, 40):
        d.batch([big_message(i, base + i * 1000) for i in range(start, start + 40)])
    small = history(d.api, d.id, limit=1, **wide())           # warm every code path
    assert small["count"] == 1
    hwm_before = vm_kib(s, "VmHWM")
    r = d.api.get(f"/telemetry/{d.id}", params={"limit": 10000, **wide()})
    body = expect(r, 200)
    grown = vm_kib(s, "VmHWM") - hwm_before
    record = len(r.content) / max(body["count"], 1)
    # everything would be ~24 MB; a page is ~1 MB (peak: the page, its copy in
    # the HTTP response, the store's chunk)
    assert grown < 12 * 1024, f"VmHWM grew by {grown} KiB for one page"
    assert 0 < body["count"] < n and isinstance(body["next_cursor"], str), \
        f"page of {body['count']} records, next_cursor {body['next_cursor']!r}"
    assert len(r.content) <= budget + 2 * record + 4096, \
        f"page of {len(r.content)} bytes for a budget of {budget}"
    for path, key, limit in ((f"/telemetry/{d.id}", "data", 10000),
                             (f"/telemetry/user/{owner.user_id}", "telemetry", 1000)):
        recs = read_all(d.api if key == "data" else owner.api, path, list_key=key,
                        limit=limit, **wide())
        got = [rec["measurements"]["i"] for rec in recs]
        assert sorted(got) == list(range(n)) and len(set(got)) == n, \
            f"{path}: {len(got)} records, {len(set(got))} distinct"
        assert all(rec["measurements"]["s00"].startswith(f"{rec['measurements']['i']:06d}")
                   for rec in recs)
    grown = vm_kib(s, "VmHWM") - hwm_before
    assert grown < 12 * 1024, f"VmHWM grew by {grown} KiB while paging"


def test_latest_is_bounded_by_bytes(start_server):
    """A device with very many measurement names: /latest stops at the page
    byte budget and says so, and the truncated answer is not cached as the
    complete one."""
    s = start_server(env={"IOTFLOW_MAX_PAGE_BYTES": "65536"})
    owner = make_user(s, "bearer")
    d = new_device(owner)
    for m in range(3):                       # 300 names x ~1 KB = ~300 KB
        d.post({f"m{m}_{k:02d}": "v" * 1000 for k in range(100)})
    for _ in range(2):                       # the store, then again (not from the cache)
        r = owner.api.get(f"/telemetry/{d.id}/latest")
        body = expect(r, 200)
        assert body.get("truncated") is True and body["source"] == "store", describe(r)
        assert 0 < len(body["latest_data"]) < 300, len(body["latest_data"])
        assert len(r.content) < 3 * 65536, len(r.content)
    small = new_device(owner)
    small.post({"a": 1})
    body = expect(owner.api.get(f"/telemetry/{small.id}/latest"), 200)
    assert "truncated" not in body and body["latest_data"] == {"a": 1}, body
