/* docs_search.c — GET /devices/search: devices by tag, by distance from a
 * point (near=lat,lon&radius_m=) or in a box (bbox=minLat,minLon,maxLat,
 * maxLon; minLon > maxLon crosses the antimeridian), a user's own devices
 * or, for the admin, everyone's. Newest metadata change first, cursor
 * paging; each device with its summary, its metadata and, for near, its
 * distance in metres. The store filters by the covering boxes
 * (core/geo.h); the exact distance filters what they return. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/docs_common.h"
#include "api/handlers_docs.h"
#include "api/views.h"
#include "core/metadata.h"
#include "util/err.h"

#define SEARCH_PAGE_DEFAULT 20
#define SEARCH_PAGE_MAX 100
/* Bytes of metadata one page carries at most (it ends early, with a cursor). */
#define SEARCH_PAGE_BYTES (512 * 1024)

/* Reads n comma-separated finite numbers; false unless exactly n. */
static bool parse_numbers(const char *s, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *end;
        errno = 0;
        out[i] = strtod(s, &end);
        if (end == s || errno || !isfinite(out[i]) || *end != (i + 1 < n ? ',' : '\0'))
            return false;
        s = end + 1;
    }
    return true;
}

static bool bad_param(struct iot_req *r, const char *message)
{
    iot_reply_error(r, 400, "Invalid parameter", "%s", message);
    return false;
}

static bool read_near(struct iot_req *r, const char *near, struct iot_metadata_search *s)
{
    double p[2], radius[1];
    const char *rm = iot_req_query(r, "radius_m");
    if (!parse_numbers(near, p, 2) || !iot_geo_lat_valid(p[0]) || !iot_geo_lon_valid(p[1]))
        return bad_param(r, "'near' must be 'latitude,longitude' within [-90, 90] and"
                            " [-180, 180]");
    if (!rm || !parse_numbers(rm, radius, 1) || radius[0] <= 0 ||
        radius[0] > IOT_GEO_RADIUS_MAX_M)
        return bad_param(r, "'near' needs 'radius_m', a distance in metres above 0 and at most"
                            " 20037509");
    s->circle = true;
    s->lat = p[0];
    s->lon = p[1];
    s->radius_m = radius[0];
    s->n_boxes = iot_geo_circle_boxes(p[0], p[1], radius[0], s->boxes);
    return true;
}

static bool read_bbox(struct iot_req *r, const char *bbox, struct iot_metadata_search *s)
{
    double b[4];
    if (!parse_numbers(bbox, b, 4) || !iot_geo_lat_valid(b[0]) || !iot_geo_lon_valid(b[1]) ||
        !iot_geo_lat_valid(b[2]) || !iot_geo_lon_valid(b[3]) || b[0] > b[2])
        return bad_param(r, "'bbox' must be 'minLat,minLon,maxLat,maxLon' within [-90, 90] and"
                            " [-180, 180], minLat <= maxLat (minLon > maxLon crosses the"
                            " antimeridian)");
    s->n_boxes = iot_geo_region_boxes(b[0], b[1], b[2], b[3], s->boxes);
    return true;
}

/* The criteria from the query string; answers 400 itself. */
static bool read_criteria(struct iot_req *r, struct iot_metadata_search *s)
{
    const char *tag = iot_req_query(r, "tag"), *near = iot_req_query(r, "near");
    const char *bbox = iot_req_query(r, "bbox");
    if (!tag && !near && !bbox)
        return bad_param(r, "search by 'tag', 'near' (with 'radius_m') or 'bbox'");
    if (near && bbox)
        return bad_param(r, "'near' and 'bbox' cannot be combined");
    if (tag && !iot_metadata_tag_valid(tag))
        return bad_param(r, "'tag' must be 1 to 64 bytes of text without control characters");
    s->base.tag = tag;
    if (near)
        return read_near(r, near, s);
    return !bbox || read_bbox(r, bbox, s);
}

struct results {
    struct iot_req *r;
    bool near; /* each result says its distance */
    json_t *devices;
    int64_t limit, bytes;
    int64_t last_ts;
    char last_id[IOT_DOCS_ID_MAX + 1];
    int rc;
};

static int add_result(void *ctx, const struct iot_doc *doc, double distance_m)
{
    struct results *res = ctx;
    struct iot_device d;
    int rc = iot_reg_device_get(&iot_app_of(res->r)->registry, doc->device_id, &d);
    if (rc == IOT_ENOTFOUND)
        return 0; /* deleted: its clean-up is under way */
    if (rc) {
        res->rc = rc;
        return 1;
    }
    json_t *meta = json_loadb(doc->body, doc->body_len, 0, NULL);
    json_t *item = json_pack("{s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)d.id, "name", d.name,
                             "device_type", d.device_type, "status", d.status, "metadata",
                             meta ? meta : json_object());
    if (item && res->near)
        json_object_set_new(item, "distance_m", json_real(distance_m));
    json_array_append_new(res->devices, item);
    res->bytes += (int64_t)doc->body_len;
    res->last_ts = doc->ts_ms;
    snprintf(res->last_id, sizeof res->last_id, "%s", doc->id);
    return (int64_t)json_array_size(res->devices) >= res->limit || res->bytes >= SEARCH_PAGE_BYTES;
}

void iot_h_device_search(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_docs_cursor c;
    struct iot_metadata_search s = {.base = {0}};
    int64_t limit;
    if (!iot_authn_any(r, &p) ||
        !iot_req_query_int(r, "limit", SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX, &limit) ||
        !iot_docs_cursor_read(r, &c) || !read_criteria(r, &s))
        return;
    if (limit == 0)
        limit = SEARCH_PAGE_DEFAULT;
    if (!p.admin)
        s.base.user_id = p.user.id;
    if (c.set) {
        s.base.has_after = true;
        s.base.after_ts = c.ts;
        s.base.after_id = c.id;
    }
    struct results res = {.r = r, .near = s.circle, .devices = json_array(), .limit = limit};
    int rc = iot_metadata_search(&iot_app_of(r)->docs, &s, add_result, &res);
    if (rc || res.rc) {
        json_decref(res.devices);
        iot_reply_store_error(r, rc ? rc : res.rc, "device metadata");
        return;
    }
    size_t n = json_array_size(res.devices);
    json_t *next = json_null();
    if ((int64_t)n >= limit || res.bytes >= SEARCH_PAGE_BYTES) {
        char cursor[IOT_DOCS_CURSOR_MAX];
        iot_docs_cursor_format(res.last_ts, res.last_id, cursor, sizeof cursor);
        next = json_string(cursor);
    }
    iot_reply_json(r, 200, json_pack("{s:o, s:I, s:o}", "devices", res.devices, "count",
                                     (json_int_t)n, "next_cursor", next));
}
