/* registry_pg_scan.c — the paged listings of the PostgreSQL registry (users,
 * devices, groups, group members, a device's groups): the fetch of one chunk
 * for the paging loop the SQL backends share (store/registry_scan.c).
 *
 * Rows are copied out in chunks and the caller's callback runs with no
 * connection held, so it may call back into the store (even to write)
 * without starving the pool. The first chunk runs in a read-only REPEATABLE
 * READ transaction together with the parent check and the count, so *total
 * and the first rows come from one snapshot; later chunks continue after the
 * last key seen (keyset), not by OFFSET. */
#include <string.h>

#include "store/postgres/registry_pg_int.h"
#include "util/err.h"

enum { SCAN_CHUNK = 100 }; /* rows copied out per connection hold */

/* The statement that finds the scan's parent row, or -1 if it has none. */
static int parent_stmt(enum iot_reg_scan_kind k)
{
    switch (k) {
    case IOT_REG_SCAN_GROUP_DEVICES: return ST_GRP_EXISTS;
    case IOT_REG_SCAN_DEVICE_GROUPS: return ST_DEV_EXISTS;
    default: return -1;
    }
}

/* A filter value is the caller's whole string (no field cap applies): a
 * longer value must match nothing rather than a truncated prefix. */
static void param_string(struct iot_pg_params *p, const char *s)
{
    iot_pg_param_text(p, s, strlen(s) + 1);
}

/* Parameters shared by the row and count statements, in the order
 * registry_pg_sql.c numbers them. */
static void bind_filters(struct iot_pg_params *p, const struct iot_reg_scan *sc)
{
    if (iot_reg_scan_has_parent(sc->kind))
        iot_pg_param_int(p, sc->parent);
    if (sc->mask & IOT_REG_FILTER_UID)
        iot_pg_param_int(p, sc->uid);
    if (sc->mask & IOT_REG_FILTER_STATUS)
        param_string(p, sc->status);
    if (sc->mask & IOT_REG_FILTER_TYPE)
        param_string(p, sc->type);
}

static void read_scan_row(const struct iot_reg_scan *sc, const PGresult *res, int i,
                          struct iot_reg_row *r)
{
    int ncols;
    switch (sc->kind) {
    case IOT_REG_SCAN_USERS:
        iot_pg_reg_read_user(res, i, &r->v.u);
        ncols = IOT_PG_USER_COLS;
        break;
    case IOT_REG_SCAN_DEVICES:
    case IOT_REG_SCAN_GROUP_DEVICES:
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

/* First chunk, inside the snapshot: the parent row must exist, then *total
 * is counted. */
static int scan_prologue(struct iot_pg_conn *c, const struct iot_reg_scan *sc)
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

static int scan_rows(struct iot_pg_conn *c, struct iot_reg_chunk *ch)
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
    struct iot_reg_chunk *ch = arg;
    const struct iot_reg_scan *sc = ch->sc;
    ch->n = 0;
    bool prologue = ch->first && (iot_reg_scan_has_parent(sc->kind) || sc->total);
    int rc = prologue ? iot_pg_begin(c, true) : IOT_OK;
    if (rc)
        return rc;
    if (prologue)
        rc = scan_prologue(c, sc);
    if (rc == IOT_OK && ch->want > 0)
        rc = scan_rows(c, ch);
    return prologue ? iot_pg_end(c, rc) : rc;
}

/* An iot_reg_fetch_fn. Reads are idempotent: a connection that broke under
 * us is retried. */
static int fetch_chunk(void *backend, struct iot_reg_chunk *ch)
{
    struct iot_pg_reg *r = backend;
    return iot_pg_with_conn(r->pool, IOT_PG_RETRY, chunk_job, ch);
}

int iot_pg_reg_scan(struct iot_pg_reg *r, const struct iot_reg_scan *sc)
{
    return iot_reg_scan_run(sc, SCAN_CHUNK, fetch_chunk, r);
}
