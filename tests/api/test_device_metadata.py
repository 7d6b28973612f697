"""Device metadata (documents store): GET/PUT /devices/{id}/metadata, tags
added and removed one at a time, GET /devices/search by tag, distance and
box (the antimeridian and the poles included), and the clean-up when a
device or its owner goes."""
import concurrent.futures
import time
import math
from urllib.parse import quote

import pytest

from conftest import expect, expect_error, key_client, register_device, unique
from docs_store import count_docs, docs_embedded, wait_for_doc

R = 6371008.8  # the server's Earth radius (core/geo.h)


def haversine(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R * math.asin(math.sqrt(h))


def meta_path(device):
    return f"/devices/{device['id']}/metadata"


def put_meta(user, device, **meta):
    return expect(user.api.put(meta_path(device), json=meta), 200)


def located(user, lat, lon, tag=None):
    dev = register_device(user)
    put_meta(user, dev, location={"latitude": lat, "longitude": lon},
             tags=[tag] if tag else [])
    return dev


def search(who, **params):
    """GET /devices/search as a user (or a bare client, e.g. srv.admin)."""
    client = getattr(who, "api", who)
    return expect(client.get("/devices/search", params=params), 200)


def ids(page):
    return [d["id"] for d in page["devices"]]


@pytest.fixture
def device(user):
    return register_device(user)


# ---------------------------------------------------------------- get / put

def test_none_yet_is_empty(user, device):
    assert expect(user.api.get(meta_path(device)), 200) == {
        "device_id": device["id"], "tags": [], "attributes": {}, "location": None,
        "updated_at": None}


def test_put_and_get(user, device):
    body = put_meta(user, device, tags=["roof", "caf\u00e9"], attributes={"floor": 3, "x": [1.5]},
                    location={"latitude": 48.8566, "longitude": 2.3522})
    assert body["tags"] == ["roof", "caf\u00e9"] and body["attributes"] == {"floor": 3, "x": [1.5]}
    assert body["location"] == {"latitude": 48.8566, "longitude": 2.3522}
    assert body["device_id"] == device["id"] and body["updated_at"].endswith("Z")
    assert expect(user.api.get(meta_path(device)), 200) == body


def test_put_replaces_everything(user, device):
    put_meta(user, device, tags=["a"], attributes={"k": 1}, location={"latitude": 1, "longitude": 2})
    body = put_meta(user, device, attributes={"only": True})
    assert body["tags"] == [] and body["location"] is None and body["attributes"] == {"only": True}


def test_put_accepts_its_own_answer(user, device):
    body = put_meta(user, device, tags=["t"], location=None)
    again = put_meta(user, device, **body)
    assert again["tags"] == ["t"]


def test_edges_of_ranges_are_valid(user, device):
    for lat, lon in ((90, 180), (-90, -180), (0, 0)):
        body = put_meta(user, device, location={"latitude": lat, "longitude": lon})
        assert body["location"] == {"latitude": lat, "longitude": lon}
    put_meta(user, device, tags=["t%d" % i for i in range(32)])
    put_meta(user, device, tags=["x" * 64])


@pytest.mark.parametrize("meta", [
    {"tags": "a"}, {"tags": [1]}, {"tags": [""]}, {"tags": ["x" * 65]}, {"tags": ["a", "a"]},
    {"tags": ["t%d" % i for i in range(33)]}, {"tags": ["bad\u0001"]}, {"tags": [None]},
    {"attributes": []}, {"attributes": "x"},
    {"location": {"latitude": 91, "longitude": 0}}, {"location": {"latitude": -90.5, "longitude": 0}},
    {"location": {"latitude": 0, "longitude": 180.01}}, {"location": {"latitude": 0, "longitude": -181}},
    {"location": {"latitude": "1", "longitude": 2}}, {"location": {"latitude": 1}},
    {"location": {"latitude": 1, "longitude": 2, "altitude": 3}}, {"location": [1, 2]},
    {"location": "Paris"}, {"colour": "red"},
])
def test_put_refuses_bad_metadata(user, device, meta):
    expect_error(user.api.put(meta_path(device), json=meta), 400)


@pytest.mark.parametrize("body", ["[]", "{", "3"])
def test_put_refuses_what_is_not_an_object(user, device, body):
    expect_error(user.api.put(meta_path(device), data=body), 400)


def test_attributes_size_limit(user, device):
    put_meta(user, device, attributes={"k": "x" * (16 * 1024 - 8)})
    r = user.api.put(meta_path(device), json={"attributes": {"k": "x" * (16 * 1024)}})
    expect_error(r, 413)


def test_access(user, other_user, device, srv):
    expect_error(other_user.api.get(meta_path(device)), 403)
    expect_error(other_user.api.put(meta_path(device), json={}), 403)
    expect_error(other_user.api.post(f"/devices/{device['id']}/tags/x"), 403)
    expect_error(other_user.api.delete(f"/devices/{device['id']}/tags/x"), 403)
    expect_error(user.api.get("/devices/999999999/metadata"), 404)
    expect_error(srv.api.get(meta_path(device)), 401)
    dev = key_client(srv, device["api_key"])
    expect_error(dev.get(meta_path(device)), 401)
    body = expect(srv.admin.put(meta_path(device), json={"tags": ["by-admin"]}), 200)
    assert expect(user.api.get(meta_path(device)), 200) == body


# ---------------------------------------------------------------- tags

def test_tags_add_and_remove(user, device):
    tags = f"/devices/{device['id']}/tags"
    body = expect(user.api.post(f"{tags}/alpha"), 200)
    assert body["tags"] == ["alpha"]
    assert expect(user.api.post(f"{tags}/alpha"), 200)["tags"] == ["alpha"], "idempotent"
    beta = "b\u00eata gamma"
    expect(user.api.post(f"{tags}/{quote(beta)}"), 200)
    assert expect(user.api.get(meta_path(device)), 200)["tags"] == ["alpha", "b\u00eata gamma"]
    assert expect(user.api.delete(f"{tags}/alpha"), 200)["tags"] == ["b\u00eata gamma"]
    expect_error(user.api.delete(f"{tags}/alpha"), 404)
    expect_error(user.api.delete(f"{tags}/never"), 404)


def test_tags_keep_the_rest(user, device):
    put_meta(user, device, attributes={"a": 1}, location={"latitude": 5, "longitude": 6})
    body = expect(user.api.post(f"/devices/{device['id']}/tags/x"), 200)
    assert body["attributes"] == {"a": 1} and body["location"] == {"latitude": 5, "longitude": 6}


def test_tags_limits(user, device):
    put_meta(user, device, tags=["t%d" % i for i in range(32)])
    expect_error(user.api.post(f"/devices/{device['id']}/tags/one-more"), 400)
    expect(user.api.post(f"/devices/{device['id']}/tags/t5"), 200)  # present: fine
    expect_error(user.api.post(f"/devices/{device['id']}/tags/{'x' * 65}"), 400)
    expect_error(user.api.post(f"/devices/{device['id']}/tags/%01"), 400)


def test_concurrent_tag_adds_all_land(user, device):
    def add(i):
        return expect(user.api.post(f"/devices/{device['id']}/tags/c{i}"), 200)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(20)))
    tags = expect(user.api.get(meta_path(device)), 200)["tags"]
    assert sorted(tags) == sorted(f"c{i}" for i in range(20))


# ---------------------------------------------------------------- search

def test_search_by_tag_own_devices_only(users, srv):
    tag = unique("t")
    owner, other = users.new(), users.new()
    mine = [register_device(owner) for _ in range(2)]
    theirs = register_device(other)
    for d in mine:
        expect(owner.api.post(f"/devices/{d['id']}/tags/{tag}"), 200)
    expect(other.api.post(f"/devices/{theirs['id']}/tags/{tag}"), 200)
    page = search(owner, tag=tag)
    assert sorted(ids(page)) == sorted(d["id"] for d in mine) and page["next_cursor"] is None
    item = page["devices"][0]
    assert set(item) >= {"id", "name", "device_type", "status", "metadata"}
    assert tag in item["metadata"]["tags"] and "distance_m" not in item
    assert sorted(ids(search(srv.admin, tag=tag))) == sorted(d["id"] for d in mine + [theirs])


def test_search_pages(user):
    tag = unique("p")
    made = [located(user, 10, 10, tag) for _ in range(5)]
    seen, cursor = [], None
    for _ in range(10):
        page = search(user, tag=tag, limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["devices"]) <= 2 and page["count"] == len(page["devices"])
        seen += ids(page)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(d["id"] for d in made) and len(seen) == len(set(seen))
    # newest change first
    expect(user.api.post(f"/devices/{made[0]['id']}/tags/fresh"), 200)
    assert ids(search(user, tag=tag, limit=1))[0] == made[0]["id"]


def test_search_near_known_distances(user):
    tag = unique("n")
    # along the meridian a degree of latitude is R * pi / 180 m
    a, b, c = located(user, 0.5, 0, tag), located(user, 1.0, 0, tag), located(user, 2.0, 0, tag)
    page = search(user, near="0,0", radius_m=120000, tag=tag)
    got = {d["id"]: d["distance_m"] for d in page["devices"]}
    assert set(got) == {a["id"], b["id"]}
    assert got[a["id"]] == pytest.approx(R * math.pi / 360, rel=1e-9)
    assert got[b["id"]] == pytest.approx(R * math.pi / 180, rel=1e-9)
    far = search(user, near="0,0", radius_m=250000, tag=tag)
    assert {d["id"] for d in far["devices"]} == {a["id"], b["id"], c["id"]}


def test_search_near_filters_box_corners(user):
    """A device in the covering box but outside the circle is not found."""
    tag = unique("k")
    corner = located(user, 0.9, 0.9, tag)   # ~141 km away, inside the 100 km box
    inside = located(user, 0.5, 0.5, tag)   # ~79 km
    page = search(user, near="0,0", radius_m=100000, tag=tag)
    assert ids(page) == [inside["id"]]
    assert page["devices"][0]["distance_m"] == pytest.approx(haversine(0, 0, 0.5, 0.5), rel=1e-9)
    assert haversine(0, 0, 0.9, 0.9) > 100000


def test_search_near_real_cities(user):
    tag = unique("city")
    paris = located(user, 48.8566, 2.3522, tag)
    london = located(user, 51.5074, -0.1278, tag)
    located(user, 40.7128, -74.0060, tag)  # New York
    page = search(user, near="48.8566,2.3522", radius_m=400000, tag=tag)
    got = {d["id"]: d["distance_m"] for d in page["devices"]}
    assert set(got) == {paris["id"], london["id"]}
    assert got[paris["id"]] == 0
    assert 340000 < got[london["id"]] < 345000  # about 343.5 km


def test_search_across_the_antimeridian(user):
    tag = unique("am")
    east = located(user, 0, 179.9, tag)
    west = located(user, 0, -179.9, tag)
    located(user, 0, 170, tag)
    page = search(user, near="0,180", radius_m=50000, tag=tag)
    assert sorted(ids(page)) == sorted([east["id"], west["id"]])
    page = search(user, near="0,-179.95", radius_m=20000, tag=tag)
    assert sorted(ids(page)) == sorted([east["id"], west["id"]])
    # a box from 175 E over the line to 175 W
    page = search(user, bbox="-5,175,5,-175", tag=tag)
    assert sorted(ids(page)) == sorted([east["id"], west["id"]])


def test_search_antimeridian_pages_merge_in_order(user):
    tag = unique("amp")
    made = [located(user, 0, 179.99 if i % 2 else -179.99, tag) for i in range(6)]
    seen, cursor = [], None
    for _ in range(10):
        page = search(user, near="0,180", radius_m=10000, tag=tag, limit=2,
                      **({"cursor": cursor} if cursor else {}))
        seen += ids(page)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [d["id"] for d in reversed(made)], "newest first, nothing twice"


def test_search_near_the_poles(user):
    tag = unique("pole")
    across = located(user, 89.9, 180, tag)   # over the pole from the centre
    near = located(user, 89.95, 0, tag)
    located(user, 80, 0, tag)
    page = search(user, near="89.9,0", radius_m=30000, tag=tag)
    assert sorted(ids(page)) == sorted([across["id"], near["id"]])
    south = located(user, -90, 0, tag)
    page = search(user, near="-89.99,45", radius_m=5000, tag=tag)
    assert ids(page) == [south["id"]]


def test_search_by_box(user):
    tag = unique("box")
    a = located(user, 10, 10, tag)
    located(user, 30, 10, tag)
    page = search(user, bbox="0,0,20,20", tag=tag)
    assert ids(page) == [a["id"]]
    assert "distance_m" not in page["devices"][0]


def test_search_whole_world_radius(user):
    tag = unique("w")
    a, b = located(user, 0, 0, tag), located(user, 0, 180, tag)
    page = search(user, near="0,0", radius_m=20037509, tag=tag)
    assert sorted(ids(page)) == sorted([a["id"], b["id"]])


@pytest.mark.parametrize("params", [
    {"near": "0,0", "radius_m": "0"}, {"near": "0,0", "radius_m": "-5"},
    {"near": "0,0", "radius_m": "abc"}, {"near": "0,0", "radius_m": "1e99"},
    {"near": "0,0", "radius_m": " 5"}, {"near": "0,0", "radius_m": "0x10"},
    {"near": "0,0", "radius_m": "+5"}, {"near": "0,0", "radius_m": "inf"},
    {"near": "91,0", "radius_m": "10"}, {"near": "0,181", "radius_m": "10"},
    {"near": "90.0001,0"}, {"near": "0,-180.5"}, {"near": "05,0"}, {"near": "+5,0"},
    {"near": " 1,2"}, {"near": "1e1,2"}, {"near": "1.,2"}, {"near": ".5,2"},
    {"near": "0", "radius_m": "10"}, {"near": "0,0,0", "radius_m": "10"},
    {"near": "a,b", "radius_m": "10"}, {"near": "nan,0", "radius_m": "10"},
    {"bbox": "0,0,1"}, {"bbox": "0,0,91,1"}, {"bbox": "x"}, {"bbox": "0,0,1,1,"},
    {"tag": ""}, {"tag": "x" * 65}, {"tag": "a\u0001"},
    {"tag": "a", "cursor": "bogus"}, {"tag": "a", "cursor": "12.not an id"},
    {"tag": "a", "cursor": "1234567890123456789.d1"}, {"tag": "a", "cursor": "+1.d1"},
    {"tag": "a", "limit": "-1"}, {"radius_m": "0"}, {"radius_m": "20037510"},
])
def test_search_bad_input(user, params):
    expect_error(user.api.get("/devices/search", params=params), 400)


def test_search_without_criteria_lists_all_with_metadata(users):
    owner = users.new()
    a, b = located(owner, 1, 1), register_device(owner)
    register_device(owner)  # no metadata: not listed
    expect(owner.api.post(f"/devices/{b['id']}/tags/x"), 200)
    assert sorted(ids(search(owner))) == sorted([a["id"], b["id"]])


def test_search_near_defaults_to_a_kilometre(user):
    tag = unique("km")
    close = located(user, 0, 0.008, tag)   # ~890 m
    located(user, 0, 0.01, tag)            # ~1112 m
    assert ids(search(user, near="0,0", tag=tag)) == [close["id"]]


def test_search_near_and_bbox_together(user):
    tag = unique("both")
    west, east = located(user, 0, -0.5, tag), located(user, 0, 0.5, tag)
    page = search(user, near="0,0", radius_m=100000, bbox="-1,0,1,1", tag=tag)
    assert ids(page) == [east["id"]] and "distance_m" in page["devices"][0]
    assert ids(search(user, near="0,0", radius_m=100000, tag=tag, limit=5)) == [east["id"], west["id"]]


def test_search_box_edges_and_empty_box(user):
    tag = unique("edge")
    pole = located(user, 90, 180, tag)
    assert ids(search(user, bbox="90.000,180.0,90,180", tag=tag)) == [pole["id"]]
    assert search(user, bbox="10,0,5,1", tag=tag) == {"devices": [], "count": 0,
                                                      "next_cursor": None}
    assert ids(search(user, tag=tag, cursor="0.d0")) == [], "a cursor before every change"


def test_search_needs_a_user(user, device, srv):
    expect_error(srv.api.get("/devices/search", params={"tag": "x"}), 401)
    expect_error(key_client(srv, device["api_key"]).get("/devices/search", params={"tag": "x"}),
                 401)


def test_search_route_is_not_a_device_id(user):
    """/devices/search is its own route, not /devices/{id} of anything."""
    r = user.api.post("/devices/search")
    assert r.status_code == 405, r.text


# ---------------------------------------------------------------- clean-up

def test_deleting_a_device_removes_its_metadata(users, srv):
    owner = users.new()
    tag = unique("gone")
    doomed, kept = located(owner, 1, 1, tag), located(owner, 1, 1, tag)
    expect(srv.admin.delete(f"/admin/devices/{doomed['id']}"), 200)
    assert ids(search(owner, tag=tag)) == [kept["id"]]
    if docs_embedded(srv):
        assert count_docs(srv, "metadata", device_id=doomed["id"]) == 0
        assert count_docs(srv, "metadata", device_id=kept["id"]) == 1


def test_deleting_a_user_removes_all_documents(users, srv):
    owner = users.new()
    tag = unique("user-gone")
    dev = located(owner, 1, 1, tag)
    expect(owner.api.put(f"/devices/{dev['id']}/config", json={"a": 1}), 200)
    expect(owner.api.put(f"/users/{owner.user_id}/preferences", json={"units": "imperial"}), 200)
    if docs_embedded(srv):  # the event log is written: the clean-up must meet it there
        assert wait_for_doc(srv, "events", user_id=owner.id, k1="device.config_changed")
    expect(srv.admin.delete(f"/users/{owner.user_id}"), 200)
    assert ids(search(srv.admin, tag=tag)) == []
    if docs_embedded(srv):
        for coll in ("configs", "metadata", "prefs", "events"):
            assert count_docs(srv, coll, user_id=owner.id) == 0, coll


def test_writes_racing_a_delete_leave_nothing(users, srv):
    """Writers keep writing while the device is deleted: whatever landed
    after the clean-up is removed by the writer itself (it looks again and
    finds the device gone), so no document outlives the device."""
    owner = users.new()
    dev = register_device(owner)

    def write(i):
        r1 = owner.api.put(f"/devices/{dev['id']}/config", json={"i": i})
        r2 = owner.api.post(f"/devices/{dev['id']}/tags/t{i % 30}")
        return r1.status_code, r2.status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(write, i) for i in range(40)]
        expect(srv.admin.delete(f"/admin/devices/{dev['id']}"), 200)
        codes = [f.result() for f in futures]
    assert {c for pair in codes for c in pair} <= {200, 404}, codes
    if docs_embedded(srv):
        for coll in ("configs", "metadata"):
            assert count_docs(srv, coll, device_id=dev["id"]) == 0, coll


def test_changes_are_recorded_as_events(user, device):
    put_meta(user, device, tags=["a"])
    expect(user.api.post(f"/devices/{device['id']}/tags/b"), 200)
    expect(user.api.post(f"/devices/{device['id']}/tags/b"), 200)  # no change: no event
    expect(user.api.delete(f"/devices/{device['id']}/tags/a"), 200)
    want = [("tag_removed", "a"), ("tag_added", "b"), ("replaced", None)]
    deadline = time.monotonic() + 5
    while True:
        got = expect(user.api.get("/events", params={"type": "device.metadata_changed",
                                                     "device_id": device["id"]}), 200)["events"]
        seen = [(e["details"]["change"], e["details"].get("tag")) for e in got]
        if len(seen) >= len(want) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # events of one millisecond come in no set order
    assert sorted(seen, key=str) == sorted(want, key=str), got
