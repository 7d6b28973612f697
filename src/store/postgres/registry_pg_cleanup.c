/* registry_pg_cleanup.c — the PostgreSQL registry's pending telemetry
 * clean-ups (registry.h, ops version 3): the device and user deletes that
 * record theirs in the same statement, and the ops that list, finish and
 * postpone them. The SQL is in registry_pg_sql.c. */
#include <string.h>

#include "store/postgres/registry_pg_int.h"
#include "util/clock.h"
#include "util/err.h"

int iot_pg_reg_delete_with_cleanup(struct iot_pg_reg *r, int stmt, int64_t key)
{
    int64_t now = iot_now_ms(), gone = 0;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, key);
    iot_pg_param_int(&p, now);
    iot_pg_param_int(&p, now + IOT_CLEANUP_GRACE_MS);
    int rc = iot_pg_run(r->pool, stmt, &p, 0, iot_pg_reg_read_id, &gone, NULL);
    return rc == IOT_OK && gone == 0 ? IOT_ENOTFOUND : rc;
}

static void read_cleanup(const PGresult *res, int row, struct iot_pending_cleanup *out)
{
    memset(out, 0, sizeof *out);
    char kind[16];
    IOT_PG_FIELD(res, row, 0, kind);
    if (!iot_reg_cleanup_kind_parse(kind, &out->kind))
        out->kind = 0; /* the CHECK keeps other kinds out */
    out->target_id = iot_pg_i64(res, row, 1);
    out->created_at = iot_pg_i64(res, row, 2);
    out->attempts = iot_pg_i64(res, row, 3);
    out->next_at = iot_pg_i64(res, row, 4);
    IOT_PG_FIELD(res, row, 5, out->last_error);
}

struct list_job {
    int64_t due_by;
    struct iot_pending_cleanup *out;
    size_t max, n;
};

static int list_rows(struct iot_pg_conn *c, void *arg)
{
    struct list_job *j = arg;
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, j->due_by);
    iot_pg_param_int(&p, (int64_t)j->max);
    PGresult *res;
    int rc = iot_pg_exec(c, ST_CLEANUP_LIST, &p, &res);
    if (rc)
        return rc;
    int rows = PQntuples(res);
    for (j->n = 0; j->n < j->max && (int)j->n < rows; j->n++)
        read_cleanup(res, (int)j->n, &j->out[j->n]);
    PQclear(res);
    return IOT_OK;
}

int iot_pg_reg_cleanup_list(void *self, int64_t due_by, struct iot_pending_cleanup *out,
                            size_t max, size_t *n)
{
    struct iot_pg_reg *r = self;
    *n = 0;
    if (!out && max)
        return IOT_EINVAL;
    if (max > IOT_CLEANUP_PAGE_MAX)
        max = IOT_CLEANUP_PAGE_MAX;
    if (max == 0)
        return IOT_OK;
    struct list_job j = {.due_by = due_by, .out = out, .max = max};
    int rc = iot_pg_with_conn(r->pool, IOT_PG_RETRY, list_rows, &j);
    if (rc == IOT_OK)
        *n = j.n;
    return rc;
}

/* $1 kind, $2 target_id; IOT_EINVAL for a kind that is none. */
static int param_target(struct iot_pg_params *p, enum iot_cleanup_kind kind, int64_t target_id)
{
    const char *name = iot_reg_cleanup_kind_name(kind);
    if (!name)
        return IOT_EINVAL;
    iot_pg_param_literal(p, name);
    iot_pg_param_int(p, target_id);
    return IOT_OK;
}

int iot_pg_reg_cleanup_done(void *self, enum iot_cleanup_kind kind, int64_t target_id)
{
    struct iot_pg_params p = {0};
    int rc = param_target(&p, kind, target_id);
    return rc ? rc : iot_pg_reg_update(self, ST_CLEANUP_DONE, &p);
}

int iot_pg_reg_cleanup_failed(void *self, enum iot_cleanup_kind kind, int64_t target_id,
                              int64_t next_at, const char *error)
{
    struct iot_pg_params p = {0};
    int rc = param_target(&p, kind, target_id);
    if (rc)
        return rc;
    if (!error)
        error = "";
    iot_pg_param_int(&p, next_at);
    iot_pg_param_text(&p, error, iot_reg_cleanup_error_len(error) + 1);
    return iot_pg_reg_update(self, ST_CLEANUP_FAILED, &p);
}
