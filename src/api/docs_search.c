/* docs_search.c — GET /devices/search: the devices with metadata, a user's
 * own or, for the admin, everyone's, by tag, by distance from a point
 * (near=lat,lon&radius_m=, 1 km by default) and by box (bbox=minLat,minLon,
 * maxLat,maxLon; minLon > maxLon crosses the antimeridian) — every
 * criterion given must hold; none lists them all. Newest metadata change
 * first, cursor paging; each device with its summary, its metadata and,
 * for near, its distance in metres. The store filters by the covering
 * boxes (core/geo.h); the exact distance filters what they return. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/authn.h"
#include "api/doc_page.h"
#include "api/docs_common.h"
#include "api/handlers_docs.h"
#include "api/views.h"
#include "core/metadata.h"
#include "util/err.h"

/* limit up to 100 (default 20, larger is clamped, 0 is the default);
 * cursors "<ts_ms>.<id>". */
static const struct iot_doc_paging search_paging = {
    .def = 20, .max = 100, .rule = IOT_DOC_LIMIT_CLAMP, .sep = '.'};
/* Bytes of metadata one page carries at most (it ends early, with a cursor). */
#define SEARCH_PAGE_BYTES (512 * 1024)
/* near without radius_m: within a kilometre. */
#define NEAR_RADIUS_DEFAULT_M 1000.0

/* The query's numbers follow grammars the OpenAPI spec states as
 * patterns, checked here character for character so that the server
 * accepts exactly what the spec calls valid. */

/* A coordinate: -?(0|[1-9][0-9]{0,2})(\.[0-9]+)? of at most `max` degrees
 * (max itself only with a fraction of zeros). Parses s[0..n). */
static bool coordinate(const char *s, size_t n, int max, double *out)
{
    size_t i = s[0] == '-', int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_len = i - int_start;
    if (int_len == 0 || int_len > 3 || (int_len > 1 && s[int_start] == '0'))
        return false;
    int whole = 0;
    for (size_t k = int_start; k < i; k++)
        whole = whole * 10 + (s[k] - '0');
    bool zero_fraction = true;
    if (i < n && s[i] == '.') {
        size_t frac_start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            zero_fraction &= s[i++] == '0';
        if (i == frac_start)
            return false;
    }
    if (i != n || whole > max || (whole == max && !zero_fraction))
        return false;
    char buf[64];
    if (n >= sizeof buf)
        return false; /* can't be a coordinate we need this precisely */
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return true;
}

/* "lat,lon[,lat,lon...]": n_pairs pairs of coordinates into out. */
static bool coordinates(const char *s, double *out, size_t n_pairs)
{
    for (size_t i = 0; i < 2 * n_pairs; i++) {
        size_t len = strcspn(s, ",");
        bool last = i + 1 == 2 * n_pairs;
        if ((s[len] == ',') == last || !coordinate(s, len, i % 2 ? 180 : 90, &out[i]))
            return false;
        s += len + !last;
    }
    return true;
}

/* A JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s, double *out)
{
    const char *p = s + (*s == '-');
    size_t d = strspn(p, "0123456789");
    if (d == 0 || (d > 1 && *p == '0'))
        return false;
    p += d;
    if (*p == '.') {
        d = strspn(++p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '+' || p[1] == '-');
        d = strspn(p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    if (*p)
        return false;
    *out = strtod(s, NULL);
    return isfinite(*out);
}

static bool bad_param(struct iot_req *r, const char *message)
{
    iot_reply_error(r, 400, "Invalid parameter", "%s", message);
    return false;
}

/* radius_m is checked even without near (where it means nothing). */
static bool read_radius(struct iot_req *r, double *radius)
{
    const char *rm = iot_req_query(r, "radius_m");
    *radius = NEAR_RADIUS_DEFAULT_M;
    if (rm && (!json_number(rm, radius) || *radius <= 0 || *radius > IOT_GEO_RADIUS_MAX_M))
        return bad_param(r, "'radius_m' must be a distance in metres above 0 and at most"
                            " 20037509");
    return true;
}

static bool read_near(struct iot_req *r, const char *near, double radius,
                      struct iot_metadata_search *s)
{
    double p[2];
    if (!coordinates(near, p, 1))
        return bad_param(r, "'near' must be 'latitude,longitude' within [-90, 90] and"
                            " [-180, 180], plain decimals");
    s->circle = true;
    s->lat = p[0];
    s->lon = p[1];
    s->radius_m = radius;
    if (!s->n_boxes) /* with a bbox, its boxes bound the query and the circle filters */
        s->n_boxes = iot_geo_circle_boxes(p[0], p[1], radius, s->boxes);
    return true;
}

/* *empty: the box holds nothing (minLat above maxLat). */
static bool read_bbox(struct iot_req *r, const char *bbox, struct iot_metadata_search *s,
                      bool *empty)
{
    double b[4];
    if (!coordinates(bbox, b, 2))
        return bad_param(r, "'bbox' must be 'minLat,minLon,maxLat,maxLon' within [-90, 90] and"
                            " [-180, 180], plain decimals (minLon > maxLon crosses the"
                            " antimeridian)");
    *empty = b[0] > b[2];
    if (!*empty)
        s->n_boxes = iot_geo_region_boxes(b[0], b[1], b[2], b[3], s->boxes);
    return true;
}

/* The criteria from the query string; answers 400 itself. *empty: they
 * select nothing. */
static bool read_criteria(struct iot_req *r, struct iot_metadata_search *s, bool *empty)
{
    const char *tag = iot_req_query(r, "tag"), *near = iot_req_query(r, "near");
    const char *bbox = iot_req_query(r, "bbox");
    *empty = false;
    if (tag && !iot_metadata_tag_valid(tag))
        return bad_param(r, "'tag' must be 1 to 64 bytes of text without control characters");
    s->base.tag = tag;
    double radius;
    if (!read_radius(r, &radius) || (bbox && !read_bbox(r, bbox, s, empty)))
        return false;
    return !near || read_near(r, near, radius, s);
}

struct results {
    struct iot_req *r;
    bool near; /* each result says its distance */
    json_t *devices;
    struct iot_doc_page page;
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
    return iot_doc_page_take(&res->page, doc);
}

void iot_h_device_search(struct iot_req *r)
{
    struct iot_principal p;
    struct iot_doc_cursor c;
    struct iot_metadata_search s = {.base = {0}};
    bool empty;
    if (!iot_authn_any(r, &p) || !iot_doc_page_filter(r, &search_paging, &s.base, &c) ||
        !read_criteria(r, &s, &empty))
        return;
    if (!p.admin)
        s.base.user_id = p.user.id;
    struct results res = {.r = r, .near = s.circle, .devices = json_array(),
                          .page = {.limit = s.base.limit, .max_bytes = SEARCH_PAGE_BYTES}};
    int rc = empty ? IOT_OK : iot_metadata_search(&iot_app_of(r)->docs, &s, add_result, &res);
    if (rc || res.rc) {
        json_decref(res.devices);
        iot_reply_store_error(r, rc ? rc : res.rc, "device metadata");
        return;
    }
    size_t n = json_array_size(res.devices);
    json_t *next = iot_doc_page_full(&res.page)
                       ? iot_doc_cursor_json(&search_paging, res.page.last_ts, res.page.last_id)
                       : json_null();
    iot_reply_json(r, 200, json_pack("{s:o, s:I, s:o}", "devices", res.devices, "count",
                                     (json_int_t)n, "next_cursor", next));
}
