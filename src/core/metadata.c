/* metadata.c — device metadata (metadata.h): checking what a client sends,
 * the document and its header, tag changes at the exact rev, and the
 * searches by tag and location. */
#include "core/metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/docs_util.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"
#include "util/utf8.h"

/* Documents a search reads from the store per query and round. */
#define SEARCH_CHUNK 64

/* ---- checking --------------------------------------------------------------- */

bool iot_metadata_tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > IOT_METADATA_TAG_MAX)
        return false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        if (!iot_utf8_next(tag, n, &i, &cp) || cp < 0x20 || cp == 0x7f ||
            iot_codepoint_invisible(cp))
            return false;
    }
    return true;
}

static bool fail(char *why, size_t size, const char *text)
{
    snprintf(why, size, "%s", text);
    return false;
}

static bool tags_ok(const json_t *tags, char *why, size_t size)
{
    if (!json_is_array(tags))
        return fail(why, size, "'tags' must be an array of strings");
    if (json_array_size(tags) > IOT_METADATA_TAGS_MAX) {
        snprintf(why, size, "at most %d tags", IOT_METADATA_TAGS_MAX);
        return false;
    }
    for (size_t i = 0; i < json_array_size(tags); i++) {
        const json_t *t = json_array_get(tags, i);
        if (!json_is_string(t) || !iot_metadata_tag_valid(json_string_value(t))) {
            snprintf(why, size, "each tag must be a string of 1 to %d bytes without control"
                     " characters", IOT_METADATA_TAG_MAX);
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(tags, j), t)) {
                snprintf(why, size, "duplicate tag '%s'", json_string_value(t));
                return false;
            }
    }
    return true;
}

static bool coordinate(const json_t *loc, const char *key, double lo, double hi, double *out,
                       char *why, size_t size)
{
    const json_t *v = json_object_get(loc, key);
    if (!json_is_number(v)) {
        snprintf(why, size, "'location.%s' must be a number", key);
        return false;
    }
    *out = json_number_value(v);
    if (*out < lo || *out > hi) {
        snprintf(why, size, "'location.%s' must lie in [%g, %g]", key, lo, hi);
        return false;
    }
    return true;
}

/* {latitude, longitude} in range, nothing else; JSON null: no location. */
static json_t *location_parse(const json_t *loc, char *why, size_t size)
{
    if (!loc || json_is_null(loc))
        return json_null();
    double lat, lon;
    if (!json_is_object(loc) || json_object_size(loc) != 2) {
        fail(why, size, "'location' must be null or {\"latitude\": number, \"longitude\": number}");
        return NULL;
    }
    if (!coordinate(loc, "latitude", -90.0, 90.0, &lat, why, size) ||
        !coordinate(loc, "longitude", -180.0, 180.0, &lon, why, size))
        return NULL;
    return json_pack("{s:f, s:f}", "latitude", lat, "longitude", lon);
}

static bool attributes_ok(const json_t *attrs, bool *too_large, char *why, size_t size)
{
    if (!json_is_object(attrs))
        return fail(why, size, "'attributes' must be an object");
    char *text = iot_json_dumps(attrs);
    size_t n = text ? strlen(text) : SIZE_MAX;
    free(text);
    if (n > IOT_METADATA_ATTRIBUTES_MAX) {
        *too_large = true;
        snprintf(why, size, "'attributes' exceeds %d bytes", IOT_METADATA_ATTRIBUTES_MAX);
        return false;
    }
    return true;
}

static bool known_keys(const json_t *in, char *why, size_t size)
{
    static const char *const known[] = {"tags", "attributes", "location", "device_id",
                                        "updated_at"};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)in, key, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            snprintf(why, size, "unknown field '%.64s' (tags, attributes, location)", key);
            return false;
        }
    }
    return true;
}

json_t *iot_metadata_parse(const json_t *in, bool *too_large, char *why, size_t why_size)
{
    *too_large = false;
    if (!json_is_object(in)) {
        fail(why, why_size, "metadata must be a JSON object");
        return NULL;
    }
    if (!known_keys(in, why, why_size))
        return NULL;
    json_t *tags = json_object_get(in, "tags"), *attrs = json_object_get(in, "attributes");
    if ((tags && !tags_ok(tags, why, why_size)) ||
        (attrs && !attributes_ok(attrs, too_large, why, why_size)))
        return NULL;
    json_t *loc = location_parse(json_object_get(in, "location"), why, why_size);
    if (!loc)
        return NULL;
    /* Borrowed values are taken with a new reference (O), fresh ones are
     * handed over (o), so that the defaults do not leak. */
    return json_pack("{s:o, s:o, s:o}", "tags", tags ? json_incref(tags) : json_array(),
                     "attributes", attrs ? json_incref(attrs) : json_object(), "location", loc);
}

json_t *iot_metadata_empty(int64_t device_id)
{
    return json_pack("{s:I, s:[], s:{}, s:n, s:n}", "device_id", (json_int_t)device_id, "tags",
                     "attributes", "location", "updated_at");
}

/* ---- the document ------------------------------------------------------------ */

static void doc_id(int64_t device_id, char *buf, size_t size)
{
    snprintf(buf, size, "d%lld", (long long)device_id);
}

int iot_metadata_load(struct iot_docs *d, int64_t device_id, json_t **meta, int64_t *rev)
{
    char id[IOT_DOCS_ID_MAX + 1];
    doc_id(device_id, id, sizeof id);
    return iot_docs_get_object(d, IOT_DOCS_METADATA, id, meta, rev, NULL);
}

int iot_metadata_store(struct iot_docs *d, int64_t device_id, int64_t owner_id, const json_t *meta,
                       int64_t expect_rev, int64_t now_ms, char **body)
{
    if (body)
        *body = NULL;
    const json_t *tags = json_object_get(meta, "tags"), *loc = json_object_get(meta, "location");
    const char *tag_text[IOT_METADATA_TAGS_MAX];
    size_t n_tags = json_array_size(tags);
    if (n_tags > IOT_METADATA_TAGS_MAX)
        return IOT_EINVAL;
    for (size_t i = 0; i < n_tags; i++)
        tag_text[i] = json_string_value(json_array_get(tags, i));
    char at[IOT_ISO8601_LEN + 1], id[IOT_DOCS_ID_MAX + 1];
    iot_iso8601(now_ms, at, sizeof at);
    doc_id(device_id, id, sizeof id);
    json_t *stored = json_pack("{s:I, s:O, s:O, s:O, s:s}", "device_id", (json_int_t)device_id,
                               "tags", tags, "attributes", json_object_get(meta, "attributes"),
                               "location", loc ? loc : json_null(), "updated_at", at);
    char *text = stored ? iot_json_dumps(stored) : NULL;
    json_decref(stored);
    if (!text)
        return IOT_ENOMEM;
    struct iot_doc doc = {.id = id, .user_id = owner_id, .device_id = device_id, .ts_ms = now_ms,
                          .tags = tag_text, .n_tags = n_tags, .body = text,
                          .body_len = strlen(text)};
    if (json_is_object(loc)) {
        doc.has_location = true;
        doc.lat = json_number_value(json_object_get(loc, "latitude"));
        doc.lon = json_number_value(json_object_get(loc, "longitude"));
    }
    int rc = iot_docs_put(d, IOT_DOCS_METADATA, &doc, expect_rev, NULL);
    if (rc == IOT_OK && body)
        *body = text;
    else
        free(text);
    return rc;
}

/* ---- tags ------------------------------------------------------------------------ */

static ssize_t tag_index(const json_t *tags, const char *tag)
{
    for (size_t i = 0; i < json_array_size(tags); i++) {
        const char *t = json_string_value(json_array_get(tags, i));
        if (t && strcmp(t, tag) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* What a tag change does to the tags of the stored metadata. */
enum tag_change { TAG_ADD, TAG_REMOVE };

/* Applies the change to meta's tags: IOT_OK when they changed, 1 when
 * nothing needs writing (adding a tag already there), IOT_ENOTFOUND
 * (removing an absent tag) or IOT_ELIMIT (adding one too many). */
static int apply_tag(json_t *meta, enum tag_change change, const char *tag)
{
    json_t *tags = json_object_get(meta, "tags");
    ssize_t at = tag_index(tags, tag);
    if (change == TAG_REMOVE) {
        if (at < 0)
            return IOT_ENOTFOUND;
        json_array_remove(tags, (size_t)at);
        return IOT_OK;
    }
    if (at >= 0)
        return 1;
    if (json_array_size(tags) >= IOT_METADATA_TAGS_MAX)
        return IOT_ELIMIT;
    json_array_append_new(tags, json_string(tag));
    return IOT_OK;
}

static int change_tag(struct iot_docs *d, int64_t device_id, int64_t owner_id, const char *tag,
                      enum tag_change change, int64_t now_ms, bool *changed, char **body)
{
    if (body)
        *body = NULL;
    *changed = false;
    if (!iot_metadata_tag_valid(tag))
        return IOT_EINVAL;
    for (int attempt = 0; attempt < IOT_DOCS_WRITE_ATTEMPTS; attempt++) {
        json_t *meta = NULL;
        int64_t rev = IOT_DOCS_NEW; /* none yet: create it, unless someone else does first */
        int rc = iot_metadata_load(d, device_id, &meta, &rev);
        if (rc == IOT_ENOTFOUND)
            meta = json_pack("{s:[], s:{}, s:n}", "tags", "attributes", "location");
        else if (rc)
            return rc;
        rc = apply_tag(meta, change, tag);
        if (rc == 1 && body) /* already there: answer what is stored */
            *body = iot_json_dumps(meta);
        if (rc == IOT_OK)
            rc = iot_metadata_store(d, device_id, owner_id, meta, rev, now_ms, body);
        json_decref(meta);
        if (rc != IOT_ECONFLICT) {
            *changed = rc == IOT_OK;
            return rc == 1 ? IOT_OK : rc;
        }
        iot_docs_conflict_pause(attempt); /* another writer changed it first */
    }
    return IOT_EAGAIN;
}

int iot_metadata_tag_add(struct iot_docs *d, int64_t device_id, int64_t owner_id, const char *tag,
                         int64_t now_ms, bool *added, char **body)
{
    return change_tag(d, device_id, owner_id, tag, TAG_ADD, now_ms, added, body);
}

int iot_metadata_tag_remove(struct iot_docs *d, int64_t device_id, int64_t owner_id,
                            const char *tag, int64_t now_ms, char **body)
{
    bool removed;
    return change_tag(d, device_id, owner_id, tag, TAG_REMOVE, now_ms, &removed, body);
}

/* ---- searches ---------------------------------------------------------------------- */

/* A document copied out of the store's callback. */
struct held {
    char id[IOT_DOCS_ID_MAX + 1];
    int64_t user_id, device_id, ts_ms, rev;
    bool has_location;
    double lat, lon;
    char *body;
    size_t body_len;
};

/* One query of a search (one box): its documents a chunk at a time. */
struct part {
    struct iot_docs_filter f;
    char after_id[IOT_DOCS_ID_MAX + 1];
    struct held buf[SEARCH_CHUNK];
    size_t n, pos;
    bool exhausted;
    int rc;
};

static void part_drop(struct part *p)
{
    for (size_t i = p->pos; i < p->n; i++)
        free(p->buf[i].body);
    p->n = p->pos = 0;
}

static int hold(void *ctx, const struct iot_doc *doc)
{
    struct part *p = ctx;
    struct held *h = &p->buf[p->n];
    h->body = malloc(doc->body_len + 1);
    if (!h->body) {
        p->rc = IOT_ENOMEM;
        return 1;
    }
    memcpy(h->body, doc->body, doc->body_len);
    h->body[doc->body_len] = '\0';
    h->body_len = doc->body_len;
    snprintf(h->id, sizeof h->id, "%s", doc->id);
    h->user_id = doc->user_id;
    h->device_id = doc->device_id;
    h->ts_ms = doc->ts_ms;
    h->rev = doc->rev;
    h->has_location = doc->has_location;
    h->lat = doc->lat;
    h->lon = doc->lon;
    p->n++;
    return 0;
}

/* Reads the part's next chunk, after the last document it handed out. */
static int part_fill(struct iot_docs *d, struct part *p)
{
    part_drop(p);
    p->f.limit = SEARCH_CHUNK;
    p->rc = IOT_OK;
    int rc = iot_docs_find(d, IOT_DOCS_METADATA, &p->f, hold, p);
    if (!rc)
        rc = p->rc;
    p->exhausted = rc == IOT_OK && p->n < SEARCH_CHUNK;
    return rc;
}

/* The part's next document, refilling as needed; NULL when none is left. */
static struct held *part_head(struct iot_docs *d, struct part *p, int *rc)
{
    if (p->pos == p->n && !p->exhausted)
        *rc = part_fill(d, p);
    return *rc == IOT_OK && p->pos < p->n ? &p->buf[p->pos] : NULL;
}

/* In the store's order (newest first, then id descending), a before b. */
static bool comes_first(const struct iot_docs_filter *f, const struct held *a, const struct held *b)
{
    int cmp = a->ts_ms != b->ts_ms ? (a->ts_ms > b->ts_ms ? 1 : -1) : strcmp(a->id, b->id);
    return f->ascending ? cmp < 0 : cmp > 0;
}

/* Hands the document to fn (when within the circle) and moves the part
 * past it. Returns fn's answer. */
static int deliver(const struct iot_metadata_search *s, struct part *p, iot_metadata_found_fn fn,
                   void *ctx)
{
    struct held *h = &p->buf[p->pos++];
    snprintf(p->after_id, sizeof p->after_id, "%s", h->id);
    p->f.has_after = true;
    p->f.after_ts = h->ts_ms;
    p->f.after_id = p->after_id;
    double dist = 0;
    int stop = 0;
    if (s->circle)
        dist = h->has_location ? iot_geo_distance_m(s->lat, s->lon, h->lat, h->lon) : -1;
    if (!s->circle || (dist >= 0 && dist <= s->radius_m)) {
        struct iot_doc doc = {.id = h->id, .user_id = h->user_id, .device_id = h->device_id,
                              .ts_ms = h->ts_ms, .rev = h->rev, .has_location = h->has_location,
                              .lat = h->lat, .lon = h->lon, .body = h->body,
                              .body_len = h->body_len};
        stop = fn(ctx, &doc, dist);
    }
    free(h->body);
    h->body = NULL;
    return stop;
}

int iot_metadata_search(struct iot_docs *d, const struct iot_metadata_search *s,
                        iot_metadata_found_fn fn, void *ctx)
{
    size_t n = s->n_boxes ? s->n_boxes : 1;
    if (n > 2)
        return IOT_EINVAL;
    struct part *parts = calloc(n, sizeof *parts);
    if (!parts)
        return IOT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        parts[i].f = s->base;
        if (s->base.has_after) { /* own copy: the part moves its cursor */
            snprintf(parts[i].after_id, sizeof parts[i].after_id, "%s", s->base.after_id);
            parts[i].f.after_id = parts[i].after_id;
        }
        if (s->n_boxes) {
            const struct iot_geo_box *b = &s->boxes[i];
            parts[i].f.has_box = true;
            parts[i].f.lat_min = b->lat_min;
            parts[i].f.lat_max = b->lat_max;
            parts[i].f.lon_min = b->lon_min;
            parts[i].f.lon_max = b->lon_max;
        }
    }
    int rc = IOT_OK;
    for (;;) {
        struct part *next = NULL;
        for (size_t i = 0; i < n && rc == IOT_OK; i++) {
            struct held *h = part_head(d, &parts[i], &rc);
            if (h && (!next || comes_first(&s->base, h, &next->buf[next->pos])))
                next = &parts[i];
        }
        if (rc || !next || deliver(s, next, fn, ctx))
            break;
    }
    for (size_t i = 0; i < n; i++)
        part_drop(&parts[i]);
    free(parts);
    return rc;
}
