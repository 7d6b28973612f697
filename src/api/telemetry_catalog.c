/* telemetry_catalog.c — GET /api/v1/telemetry/{device_id}/measurements:
 * the device's measurement catalog (name, type of the latest value, unit,
 * first and last seen, sample count), sorted by name, read from the
 * telemetry store's catalog (iot_tm_catalog) on every backend.
 *
 * Readers and errors are those of /latest (iot_authn_device_reader). A
 * device may have any number of measurement names, so the answer is
 * bounded like /latest: it stops at the page byte budget
 * (IOTFLOW_MAX_PAGE_BYTES) and then carries "truncated": true. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/device_common.h"
#include "api/handlers.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"

/* One entry as it will be answered: its name (the sort key) and its JSON. */
struct entry {
    char name[IOT_TM_NAME_MAX + 1];
    char *json;
    size_t len;
};

struct catalog {
    struct entry *v;
    size_t n, cap;
    size_t bytes;  /* JSON of the entries so far */
    size_t budget; /* 0: none */
    bool truncated;
    int rc; /* IOT_ENOMEM when an entry could not be kept */
};

static const char *type_name(enum iot_tm_type t)
{
    switch (t) {
    case IOT_TM_NUMBER: return "number";
    case IOT_TM_BOOL: return "boolean";
    default: return "string";
    }
}

static json_t *time_json(int64_t ms)
{
    char iso[IOT_ISO8601_LEN + 1];
    iot_iso8601(ms, iso, sizeof iso);
    return json_string(iso);
}

/* The entry as compact JSON (heap); NULL when out of memory. The unit is
 * null when the catalog has none ("" in iot_tm_catalog_entry). */
static char *entry_json(const struct iot_tm_catalog_entry *e)
{
    json_t *unit = e->unit && e->unit[0] ? json_string(e->unit) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:I}", "name", e->name, "type",
                          type_name(e->type), "unit", unit ? unit : json_null(), "first_seen",
                          time_json(e->first_seen), "last_seen", time_json(e->last_seen),
                          "count", (json_int_t)e->count);
    char *text = o ? iot_json_dumps(o) : NULL;
    json_decref(o);
    return text;
}

/* Keeps one entry; stops the scan (non-zero) when the budget is already
 * reached, so "truncated" means an entry was really left out. */
static int keep_entry(void *ctx, const struct iot_tm_catalog_entry *e)
{
    struct catalog *c = ctx;
    if (c->budget && c->bytes >= c->budget) {
        c->truncated = true;
        return 1;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 32;
        struct entry *grown = realloc(c->v, cap * sizeof *grown);
        if (!grown) {
            c->rc = IOT_ENOMEM;
            return 1;
        }
        c->v = grown;
        c->cap = cap;
    }
    struct entry *x = &c->v[c->n];
    x->json = e->name ? entry_json(e) : NULL;
    if (!x->json) {
        c->rc = IOT_ENOMEM;
        return 1;
    }
    snprintf(x->name, sizeof x->name, "%s", e->name);
    x->len = strlen(x->json);
    c->bytes += x->len + 1;
    c->n++;
    return 0;
}

static void catalog_free(struct catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].json);
    free(c->v);
}

/* Byte order: names are [A-Za-z0-9_.-], so this is the order any client
 * sorting strings gets. */
static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void put_text(struct iot_buf *b, const char *key, const char *value)
{
    json_t *v = json_string(value);
    iot_buf_printf(b, ",\"%s\":", key);
    iot_buf_json(b, v ? v : json_null());
    json_decref(v);
}

static char *catalog_body(const struct iot_device *d, const struct catalog *c, size_t *len)
{
    struct iot_buf b = {0};
    iot_buf_printf(&b, "{\"device_id\":%lld", (long long)d->id);
    put_text(&b, "device_name", d->name);
    put_text(&b, "device_type", d->device_type);
    iot_buf_puts(&b, ",\"measurements\":[");
    for (size_t i = 0; i < c->n; i++) {
        if (i)
            iot_buf_append(&b, ",", 1);
        iot_buf_append(&b, c->v[i].json, c->v[i].len);
    }
    iot_buf_printf(&b, "],\"count\":%zu%s}", c->n, c->truncated ? ",\"truncated\":true" : "");
    return iot_buf_take(&b, len);
}

void iot_h_telemetry_measurements(struct iot_req *r)
{
    struct iot_device d;
    if (!iot_authn_device_reader(r, &d))
        return;
    struct iot_app *app = iot_app_of(r);
    struct catalog c = {.budget = (size_t)app->cfg->max_page_bytes};
    int rc = iot_tm_catalog(&app->telemetry, d.id, keep_entry, &c);
    if (rc == IOT_OK)
        rc = c.rc;
    if (rc) {
        catalog_free(&c);
        iot_reply_store_error(r, rc, "telemetry");
        return;
    }
    /* Backends need not deliver in name order; a truncated answer is then
     * the entries read before the budget, still sorted. */
    if (c.n > 1)
        qsort(c.v, c.n, sizeof *c.v, by_name);
    size_t len;
    char *body = catalog_body(&d, &c, &len);
    catalog_free(&c);
    if (!body) {
        iot_reply_error(r, 500, "Internal Server Error", "response could not be built");
        return;
    }
    iot_reply_raw(r, 200, body, len);
}
