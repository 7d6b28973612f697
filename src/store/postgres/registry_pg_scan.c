/* registry_pg_scan.c — the paged listings of the PostgreSQL registry (users,
 * devices, groups, group members, a device's groups).
 *
 * Same shape as the SQLite backend's: rows are copied out in chunks and the
 * caller's callback runs with no connection held, so it may call back into
 * the store (even to write) without starving the pool. The first chunk runs
 * in a read-only REPEATABLE READ transaction together with the parent check
 * and the count, so *total and the first rows come from one snapshot; later
 * chunks continue after the last key seen (keyset), not by OFFSET. */
#include <stdlib.h>
#include <string.h>

#include "store/postgres/registry_pg_int.h"
#include "util/err.h"

enum { SCAN_CHUNK = 100 }; /* rows copied out per connection hold */

struct row {
    int64_t key, added_at;
    union {
        struct iot_user u;
        struct iot_device d;
        struct iot_group g;
    } v;
};

/* The statement that finds the scan's parent row, or -1 if it has none. */
static int parent_stmt(enum scan_kind k)
{
    switch (k) {
    case SCAN_GROUP_DEVICES: return ST_GRP_EXISTS;
    case SCAN_DEVICE_GROUPS: return ST_DEV_EXISTS;
    default: return -1;
    }
}

/* A filter value is the caller's whole string (no field cap applies): a
 * longer value must match nothing rather than a truncated prefix. */
static void param_string(struct iot_pg_params *p, const char *s)
{
    iot_pg_param_text(p, s, strlen(s) + 1);
}

void iot_pg_reg_scan_filter(struct iot_pg_scan *sc, const struct iot_device_filter *f,
                            bool with_uid)
{
    if (!f)
        return;
    if (with_uid && f->user_id) {
        sc->mask |= F_UID;
        sc->uid = f->user_id;
    }
    if (f->status && f->status[0]) {
        sc->mask |= F_STATUS;
        sc->status = f->status;
    }
    if (f->device_type && f->device_type[0]) {
        sc->mask |= F_TYPE;
        sc->type = f->device_type;
    }
}

/* Parameters shared by the row and count statements, in the order
 * registry_pg_sql.c numbers them. */
static void bind_filters(struct iot_pg_params *p, const struct iot_pg_scan *sc)
{
    if (parent_stmt(sc->kind) >= 0)
        iot_pg_param_int(p, sc->parent);
    if (sc->mask & F_UID)
        iot_pg_param_int(p, sc->uid);
    if (sc->mask & F_STATUS)
        param_string(p, sc->status);
    if (sc->mask & F_TYPE)
        param_string(p, sc->type);
}

static void read_scan_row(const struct iot_pg_scan *sc, const PGresult *res, int i, struct row *r)
{
    int ncols;
    switch (sc->kind) {
    case SCAN_USERS:
        iot_pg_reg_read_user(res, i, &r->v.u);
        ncols = IOT_PG_USER_COLS;
        break;
    case SCAN_DEVICES:
    case SCAN_GROUP_DEVICES:
        iot_pg_reg_read_device(res, i, &r->v.d);
        ncols = IOT_PG_DEV_COLS;
        break;
    default:
        iot_pg_reg_read_group(res, i, &r->v.g);
        ncols = IOT_PG_GRP_COLS;
        break;
    }
    r->added_at = iot_pg_i64(res, i, ncols);
    r->key = iot_pg_i64(res, i, ncols + 1);
}

static int emit_row(const struct iot_pg_scan *sc, const struct row *r)
{
    switch (sc->kind) {
    case SCAN_USERS: return sc->fn.user(sc->ctx, &r->v.u);
    case SCAN_DEVICES: return sc->fn.device(sc->ctx, &r->v.d);
    case SCAN_GROUPS: return sc->fn.group(sc->ctx, &r->v.g);
    case SCAN_GROUP_DEVICES: return sc->fn.member(sc->ctx, &r->v.d, r->added_at);
    default: return sc->fn.device_group(sc->ctx, &r->v.g, r->added_at);
    }
}

/* First chunk, inside the snapshot: the parent row must exist, then *total
 * is counted. */
static int scan_prologue(struct iot_pg_conn *c, const struct iot_pg_scan *sc)
{
    PGresult *res;
    int rc = IOT_OK;
    int parent = parent_stmt(sc->kind);
    if (parent >= 0) {
        struct iot_pg_params p = {0};
        iot_pg_param_int(&p, sc->parent);
        rc = iot_pg_exec(c, parent, &p, &res);
        if (rc == IOT_OK && PQntuples(res) == 0)
            rc = IOT_ENOTFOUND;
        PQclear(res);
    }
    if (rc == IOT_OK && sc->total) {
        struct iot_pg_params p = {0};
        bind_filters(&p, sc);
        rc = iot_pg_exec(c, SCAN_STMT(sc->kind, sc->mask, true), &p, &res);
        if (rc == IOT_OK)
            *sc->total = iot_pg_i64(res, 0, 0);
        PQclear(res);
    }
    return rc;
}

struct chunk {
    const struct iot_pg_scan *sc;
    bool first;
    int64_t after, offset, want; /* keyset cursor, rows to skip, rows wanted */
    struct row *rows;
    int64_t n; /* rows copied */
};

static int scan_rows(struct iot_pg_conn *c, struct chunk *ch)
{
    struct iot_pg_params p = {0};
    bind_filters(&p, ch->sc);
    iot_pg_param_int(&p, ch->after);
    iot_pg_param_int(&p, ch->want);
    iot_pg_param_int(&p, ch->offset);
    PGresult *res;
    int rc = iot_pg_exec(c, SCAN_STMT(ch->sc->kind, ch->sc->mask, false), &p, &res);
    if (rc)
        return rc;
    int n = PQntuples(res);
    for (int i = 0; i < n && ch->n < ch->want; i++)
        read_scan_row(ch->sc, res, i, &ch->rows[ch->n++]);
    PQclear(res);
    return IOT_OK;
}

/* One connection hold: for the first chunk a snapshot around the prologue
 * and the rows (when there is a prologue), for later chunks one query. */
static int chunk_job(struct iot_pg_conn *c, void *arg)
{
    struct chunk *ch = arg;
    const struct iot_pg_scan *sc = ch->sc;
    ch->n = 0;
    bool prologue = ch->first && (parent_stmt(sc->kind) >= 0 || sc->total);
    int rc = prologue ? iot_pg_begin(c, true) : IOT_OK;
    if (rc)
        return rc;
    if (prologue)
        rc = scan_prologue(c, sc);
    if (rc == IOT_OK && ch->want > 0)
        rc = scan_rows(c, ch);
    return prologue ? iot_pg_end(c, rc) : rc;
}

int iot_pg_reg_scan(struct iot_pg_reg *r, const struct iot_pg_scan *sc)
{
    if (sc->page.limit < 0 || sc->page.offset < 0)
        return IOT_EINVAL;
    int64_t left = sc->has_fn ? sc->page.limit : 0;
    if (left == 0 && !sc->total && parent_stmt(sc->kind) < 0)
        return IOT_OK;
    struct row *rows = NULL;
    if (left > 0) {
        rows = malloc((size_t)(left < SCAN_CHUNK ? left : SCAN_CHUNK) * sizeof *rows);
        if (!rows)
            return IOT_ENOMEM;
    }
    struct chunk ch = {.sc = sc, .first = true, .after = INT64_MIN, .offset = sc->page.offset,
                       .rows = rows};
    int rc;
    for (;;) {
        ch.want = left < SCAN_CHUNK ? left : SCAN_CHUNK;
        /* reads are idempotent: a connection that broke under us is retried */
        rc = iot_pg_with_conn(r->pool, IOT_PG_RETRY, chunk_job, &ch);
        if (rc)
            break;
        bool stop = false;
        for (int64_t i = 0; i < ch.n && !stop; i++)
            stop = emit_row(sc, &rows[i]) != 0;
        left -= ch.n;
        if (stop || ch.n < ch.want || left == 0)
            break;
        ch.first = false;
        ch.after = rows[ch.n - 1].key;
        ch.offset = 0;
    }
    free(rows);
    return rc;
}
