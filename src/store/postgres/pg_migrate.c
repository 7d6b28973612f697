/* pg_migrate.c — schema migrations for the PostgreSQL stores.
 *
 * schema_version holds one row per (component, version) applied, so several
 * stores can share a database. The whole run is one transaction that first
 * takes pg_advisory_xact_lock(key): a second opener (another thread, another
 * iotflowd) blocks there until the first commits, then finds the versions
 * already recorded and applies nothing. The lock is released by COMMIT or
 * ROLLBACK, so a crash mid-migration cannot leave it held. DDL is
 * transactional in PostgreSQL, so a failed step leaves no half schema. */
#include "store/postgres/pg_migrate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

static const char CREATE_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " component TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " applied_at BIGINT NOT NULL," /* epoch ms */
    " PRIMARY KEY (component, version))";

static int take_lock(struct iot_pg_conn *c, int64_t key)
{
    struct iot_pg_params p = {0};
    iot_pg_param_int(&p, key);
    PGresult *r;
    int rc = iot_pg_query(c, "SELECT pg_advisory_xact_lock($1::bigint)", &p, &r);
    PQclear(r);
    return rc;
}

static int read_version(struct iot_pg_conn *c, const char *component, int *out)
{
    struct iot_pg_params p = {0};
    iot_pg_param_literal(&p, component);
    PGresult *r;
    int rc = iot_pg_query(
        c, "SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = $1::text", &p,
        &r);
    if (rc == IOT_OK)
        *out = (int)iot_pg_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

static int record_version(struct iot_pg_conn *c, const char *component, int version)
{
    struct iot_pg_params p = {0};
    iot_pg_param_literal(&p, component);
    iot_pg_param_int(&p, version);
    iot_pg_param_int(&p, iot_now_ms());
    PGresult *r;
    int rc = iot_pg_query(c,
                          "INSERT INTO schema_version (component, version, applied_at)"
                          " VALUES ($1::text, $2::integer, $3::bigint)",
                          &p, &r);
    PQclear(r);
    return rc;
}

/* The check of step v (s->checks): IOT_OK when it returns no row,
 * IOT_ECONFLICT after logging its message when it does. */
static int check_step(struct iot_pg_conn *c, const struct iot_pg_schema *s, int v)
{
    if (!s->checks || !s->checks[v])
        return IOT_OK;
    PGresult *r;
    int rc = iot_pg_query(c, s->checks[v], NULL, &r);
    if (rc == IOT_OK && PQntuples(r) > 0) {
        IOT_ERROR("postgres: %s migration to version %d refused: %s", s->component, v + 1,
                  PQgetisnull(r, 0, 0) ? "the existing data does not allow it"
                                       : PQgetvalue(r, 0, 0));
        rc = IOT_ECONFLICT;
    }
    PQclear(r);
    return rc;
}

/* The note of step v (s->notes), kept in note[v] (heap, NULL for none) to
 * be logged after the commit. */
static int note_step(struct iot_pg_conn *c, const struct iot_pg_schema *s, int v, char **note)
{
    if (!s->notes || !s->notes[v])
        return IOT_OK;
    PGresult *r;
    int rc = iot_pg_query(c, s->notes[v], NULL, &r);
    if (rc == IOT_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        note[v] = strdup(PQgetvalue(r, 0, 0));
        rc = note[v] ? IOT_OK : IOT_ENOMEM;
    }
    PQclear(r);
    return rc;
}

/* Inside the locked transaction: read where we are, apply what is missing. */
static int apply_missing(struct iot_pg_conn *c, const struct iot_pg_schema *s, int *from,
                         char **note)
{
    int rc = iot_pg_command(c, CREATE_VERSION_TABLE);
    if (rc == IOT_OK)
        rc = read_version(c, s->component, from);
    if (rc)
        return rc;
    if (*from > s->n_migrations) {
        IOT_ERROR("postgres: the %s schema is at version %d, newer than this iotflowd (%d)",
                  s->component, *from, s->n_migrations);
        return IOT_EINTERNAL;
    }
    for (int v = *from; rc == IOT_OK && v < s->n_migrations; v++) {
        rc = check_step(c, s, v);
        if (rc == IOT_OK)
            rc = iot_pg_command(c, s->migrations[v]);
        if (rc == IOT_OK)
            rc = note_step(c, s, v, note);
        if (rc == IOT_OK)
            rc = record_version(c, s->component, v + 1);
        if (rc)
            IOT_ERROR("postgres: %s migration to version %d failed: %s", s->component, v + 1,
                      iot_strerror(rc));
    }
    return rc;
}

int iot_pg_migrate(struct iot_pg_conn *c, const struct iot_pg_schema *s)
{
    char **note = calloc((size_t)s->n_migrations + 1, sizeof *note);
    if (!note)
        return IOT_ENOMEM;
    int rc = iot_pg_begin(c, false);
    int from = s->n_migrations;
    if (rc == IOT_OK) {
        from = 0;
        rc = take_lock(c, s->migration_lock);
        if (rc == IOT_OK)
            rc = apply_missing(c, s, &from, note);
        rc = iot_pg_end(c, rc);
    }
    if (rc == IOT_OK && from < s->n_migrations)
        IOT_INFO("postgres: %s schema migrated from version %d to %d", s->component, from,
                 s->n_migrations);
    for (int v = 0; v < s->n_migrations; v++) {
        if (note[v] && rc == IOT_OK) /* logged once: by the instance that took the step */
            IOT_WARN("postgres: %s migration to version %d: %s", s->component, v + 1, note[v]);
        free(note[v]);
    }
    free(note);
    return rc;
}
