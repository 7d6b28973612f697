/* registry_pg_devices.c — the device ops of the PostgreSQL registry: CRUD,
 * listing, the batched last_seen update (device_touch) and the counts behind
 * /admin/stats and /health. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/registry_pg_int.h"
#include "util/clock.h"
#include "util/err.h"

/* device_touch sends at most this many devices per statement (two array
 * parameters of ~20 bytes per entry); bigger batches take several
 * statements in one transaction. */
enum { TOUCH_CHUNK = 1000 };


static void param_device_fields(struct iot_pg_params *p, const struct iot_device *d)
{
    IOT_PG_PARAM_FIELD(p, d->name);
    IOT_PG_PARAM_FIELD(p, d->description);
    IOT_PG_PARAM_FIELD(p, d->device_type);
    IOT_PG_PARAM_FIELD(p, d->status);
    IOT_PG_PARAM_FIELD(p, d->location);
    IOT_PG_PARAM_FIELD(p, d->firmware_version);
    IOT_PG_PARAM_FIELD(p, d->hardware_version);
    if (d->api_key_hash[0]) /* "" is "no key": NULL, never unique-conflicting */
        IOT_PG_PARAM_FIELD(p, d->api_key_hash);
    else
        iot_pg_param_null(p);
    IOT_PG_PARAM_FIELD(p, d->api_key_prefix);
    IOT_PG_PARAM_FIELD(p, d->status_set_by);
}

/* An empty status defaults to "active" (iot_reg_device_defaults). */
int iot_pg_reg_device_create(void *self, struct iot_device *d)
{
    struct iot_pg_reg *r = self;
    if (!d)
        return IOT_EINVAL;
    struct iot_device *v = malloc(sizeof *v); /* ~1.6 KB: keep it off the stack */
    if (!v)
        return IOT_ENOMEM;
    *v = *d;
    iot_reg_device_defaults(v);
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, v->user_id);
    param_device_fields(&p, v);
    iot_pg_param_int(&p, v->created_at);
    iot_pg_param_int(&p, v->updated_at);
    iot_pg_param_time(&p, v->last_seen);
    /* an unknown owner is a foreign-key violation: IOT_ENOTFOUND */
    int rc = iot_pg_run(r->pool, ST_DEV_INSERT, &p, 0, iot_pg_reg_read_id, &v->id, NULL);
    if (rc == IOT_OK)
        *d = *v;
    free(v);
    return rc;
}

int iot_pg_reg_device_get(void *self, int64_t id, struct iot_device *out)
{
    struct iot_pg_reg *r = self;
    if (!out)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, id);
    return iot_pg_run(r->pool, ST_DEV_BY_ID, &p, IOT_PG_RETRY, iot_pg_reg_read_device, out,
                      NULL);
}

int iot_pg_reg_device_get_by_key_hash(void *self, const char *key_hash, struct iot_device *out)
{
    struct iot_pg_reg *r = self;
    if (!out || !key_hash)
        return IOT_EINVAL;
    if (!key_hash[0])
        return IOT_ENOTFOUND; /* stored as NULL: never matches */
    struct iot_pg_params p = {0};
    iot_pg_param_text(&p, key_hash, strlen(key_hash) + 1);
    return iot_pg_run(r->pool, ST_DEV_BY_KEY, &p, IOT_PG_RETRY, iot_pg_reg_read_device, out,
                      NULL);
}

/* Rewrites every mutable field; id, user_id and created_at stay. */
int iot_pg_reg_device_update(void *self, const struct iot_device *d)
{
    if (!d)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, d->id);
    param_device_fields(&p, d);
    iot_pg_param_int(&p, d->updated_at ? d->updated_at : iot_now_ms());
    iot_pg_param_time(&p, d->last_seen);
    return iot_pg_reg_update(self, ST_DEV_UPDATE, &p);
}

/* A text field, or NULL ("leave the column") when `write` is false. */
static void param_field_if(struct iot_pg_params *p, bool write, const char *s, size_t cap)
{
    if (write)
        iot_pg_param_text(p, s, cap);
    else
        iot_pg_param_null(p);
}

/* One statement (see ST_DEV_BY_DEVICE); not retried: a write. */
int iot_pg_reg_device_update_by_device(void *self, const struct iot_device *d, unsigned fields)
{
    struct iot_pg_reg *r = self;
    if (!d)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, d->id);
    IOT_PG_PARAM_FIELD(&p, d->status);
    param_field_if(&p, fields & IOT_REG_OWN_LOCATION, d->location, sizeof d->location);
    param_field_if(&p, fields & IOT_REG_OWN_FIRMWARE, d->firmware_version,
                   sizeof d->firmware_version);
    param_field_if(&p, fields & IOT_REG_OWN_HARDWARE, d->hardware_version,
                   sizeof d->hardware_version);
    iot_pg_param_int(&p, d->updated_at ? d->updated_at : iot_now_ms());
    int64_t outcome = 0;
    int rc = iot_pg_run(r->pool, ST_DEV_BY_DEVICE, &p, 0, iot_pg_reg_read_id, &outcome, NULL);
    if (rc)
        return rc;
    return outcome == 0 ? IOT_OK : outcome == 1 ? IOT_ECONFLICT : IOT_ENOTFOUND;
}

/* Memberships go with it (ON DELETE CASCADE). */
int iot_pg_reg_device_delete(void *self, int64_t id)
{
    return iot_pg_reg_delete_with_cleanup(self, ST_DEV_DELETE, id);
}

int iot_pg_reg_device_list(void *self, const struct iot_device_filter *f, struct iot_page page,
                           iot_device_fn fn, void *ctx, int64_t *total)
{
    struct iot_reg_scan sc = {.kind = IOT_REG_SCAN_DEVICES, .page = page, .total = total,
                              .ctx = ctx, .fn.device = fn, .has_fn = fn != NULL};
    iot_reg_scan_filter(&sc, f, true);
    return iot_pg_reg_scan(self, &sc);
}

/* ---- device_touch -------------------------------------------------------- */

static int by_id_then_time(const void *a, const void *b)
{
    const struct iot_seen *x = a, *y = b;
    if (x->device_id != y->device_id)
        return x->device_id < y->device_id ? -1 : 1;
    return (x->last_seen > y->last_seen) - (x->last_seen < y->last_seen);
}

/* The batch without "never" entries, one entry per device with its latest
 * time, in ascending id order (the order the statement locks rows in).
 * Returns the number of entries left in *out (malloc'd), or -1. */
static ptrdiff_t latest_per_device(const struct iot_seen *seen, size_t n, struct iot_seen **out)
{
    struct iot_seen *v = malloc(n * sizeof *v);
    if (!v)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (seen[i].last_seen != 0) /* "never" cannot move last_seen forward */
            v[m++] = seen[i];
    qsort(v, m, sizeof *v, by_id_then_time);
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (k > 0 && v[k - 1].device_id == v[i].device_id)
            v[k - 1] = v[i]; /* sorted by time within an id: the later wins */
        else
            v[k++] = v[i];
    }
    *out = v;
    return (ptrdiff_t)k;
}

/* "{1,2,3}": array literals for the statement's two parameters. */
static int array_literals(const struct iot_seen *v, size_t n, char **ids, char **times)
{
    size_t cap = n * 21 + 3; /* 20 chars of int64, a comma; braces, NUL */
    *ids = malloc(cap);
    *times = malloc(cap);
    if (!*ids || !*times)
        return IOT_ENOMEM;
    size_t a = 0, b = 0;
    (*ids)[a++] = '{';
    (*times)[b++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? "," : "";
        a += (size_t)snprintf(*ids + a, cap - a, "%s%" PRId64, sep, v[i].device_id);
        b += (size_t)snprintf(*times + b, cap - b, "%s%" PRId64, sep, v[i].last_seen);
    }
    memcpy(*ids + a, "}", 2);
    memcpy(*times + b, "}", 2);
    return IOT_OK;
}

static int touch_chunk(struct iot_pg_conn *c, const struct iot_seen *v, size_t n)
{
    char *ids = NULL, *times = NULL;
    int rc = array_literals(v, n, &ids, &times);
    if (rc == IOT_OK) {
        struct iot_pg_params p = {0};
        iot_pg_param_literal(&p, ids);
        iot_pg_param_literal(&p, times);
        PGresult *res;
        rc = iot_pg_exec(c, ST_DEV_TOUCH, &p, &res);
        PQclear(res);
    }
    free(ids);
    free(times);
    return rc;
}

struct touch_job {
    const struct iot_seen *v;
    size_t n;
};

/* One statement for a small batch (atomic by itself), else a transaction
 * around the chunks. */
static int touch_job_run(struct iot_pg_conn *c, void *arg)
{
    const struct touch_job *job = arg;
    bool tx = job->n > TOUCH_CHUNK;
    int rc = tx ? iot_pg_begin(c, false) : IOT_OK;
    for (size_t i = 0; rc == IOT_OK && i < job->n; i += TOUCH_CHUNK)
        rc = touch_chunk(c, job->v + i, job->n - i < TOUCH_CHUNK ? job->n - i : TOUCH_CHUNK);
    return tx ? iot_pg_end(c, rc) : rc;
}

/* last_seen = max(last_seen, entry) for every known id; unknown ids are
 * ignored (they join nothing). */
int iot_pg_reg_device_touch(void *self, const struct iot_seen *seen, size_t n)
{
    struct iot_pg_reg *r = self;
    if (n == 0)
        return IOT_OK;
    if (!seen)
        return IOT_EINVAL;
    struct iot_seen *v;
    ptrdiff_t m = latest_per_device(seen, n, &v);
    if (m < 0)
        return IOT_ENOMEM;
    struct touch_job job = {.v = v, .n = (size_t)m};
    int rc = m > 0 ? iot_pg_with_conn(r->pool, 0, touch_job_run, &job) : IOT_OK;
    free(v);
    return rc;
}

/* ---- stats --------------------------------------------------------------- */

static void read_stats(const PGresult *r, int row, void *out)
{
    struct iot_device_stats *st = out;
    st->total = iot_pg_i64(r, row, 0);
    st->active = iot_pg_i64(r, row, 1);
    st->inactive = iot_pg_i64(r, row, 2);
    st->maintenance = iot_pg_i64(r, row, 3);
    st->online = iot_pg_i64(r, row, 4); /* active, last_seen >= since; NULL never is */
}

int iot_pg_reg_device_stats(void *self, int64_t online_since, struct iot_device_stats *out)
{
    struct iot_pg_reg *r = self;
    if (!out)
        return IOT_EINVAL;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, online_since);
    return iot_pg_run(r->pool, ST_DEV_STATS, &p, IOT_PG_RETRY, read_stats, out, NULL);
}
