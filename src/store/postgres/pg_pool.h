/* pg_pool.h — what the PostgreSQL stores share: a fixed pool of persistent
 * libpq connections with the store's statements prepared on each, reconnection
 * with backoff when the server goes away, migrations at open, transactions,
 * statement execution under a client-side deadline, and the mapping of
 * SQLSTATEs to IOT_E*.
 *
 * Internal to src/store/postgres/. The pool is thread-safe; a connection taken
 * from it belongs to the calling thread until it is put back. Results
 * (PGresult) belong to the caller, who PQclear()s them. */
#ifndef IOT_STORE_POSTGRES_PG_POOL_H
#define IOT_STORE_POSTGRES_PG_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Timeouts. While the server is known to be down a request does not wait at
 * all, and the one probing it waits at most connect_timeout (2 s). A server
 * host that vanishes under a statement is noticed by tcp_user_timeout (2 s,
 * pg_url.h). A live but slow server is cut by itself at STATEMENT_MS, and
 * one that still acknowledges packets but never answers (a stopped process)
 * by the client at IO_MS. */
enum {
    IOT_PG_STATEMENT_MS = 5000, /* SET statement_timeout on every connection */
    IOT_PG_IO_MS = IOT_PG_STATEMENT_MS + 1000,
    IOT_PG_POOL_WAIT_MS = IOT_PG_IO_MS, /* checkout when every connection is busy */
    IOT_PG_BACKOFF_FIRST_MS = 100,
    IOT_PG_BACKOFF_MAX_MS = 5000,
};

/* What a store declares: its migrations and its statements. */
struct iot_pg_schema {
    const char *component; /* its rows in schema_version ("registry") */
    const char *const *migrations; /* step i takes it to version i + 1 */
    int n_migrations;
    int64_t migration_lock; /* pg_advisory_xact_lock key, one per store */
    const char *const *stmts; /* prepared on every connection as "s<index>";
                                 NULL entries are skipped */
    int n_stmts;
    /* NULL, or one query per migration step (NULL for none), run just before
     * that step: a non-empty result means the existing data cannot take the
     * step; the migration then stops with IOT_ECONFLICT, all rolled back,
     * after logging the first column of the first row (what to fix). */
    const char *const *checks;
    /* NULL, or one query per migration step (NULL for none), run just after
     * that step in its transaction: a row back with a non-NULL first column
     * is logged as a warning once the migration has committed (what the
     * step did that the operator should know and act on). */
    const char *const *notes;
};

struct iot_pg_pool;
struct iot_pg_conn;

/* Opens `size` connections on `url` (see pg_url.h for pool_size), applies the
 * missing migrations on the first one and prepares the statements on all.
 * `schema` must outlive the pool. IOT_EUNAVAILABLE if the server cannot be
 * reached or refuses us, IOT_EINVAL for a bad URL; nothing is left open on
 * failure and *out is NULL. */
int iot_pg_pool_open(const char *url, const struct iot_pg_schema *schema,
                     struct iot_pg_pool **out);
void iot_pg_pool_close(struct iot_pg_pool *p); /* NULL is a no-op; nothing may be in flight */

/* Takes a connection that is up (reconnecting it first if it was lost and
 * the backoff allows) and gives it back. iot_pg_get fails fast with
 * IOT_EUNAVAILABLE while the server is known to be down, and with
 * IOT_ETIMEOUT if no connection frees up within IOT_PG_POOL_WAIT_MS. */
int iot_pg_get(struct iot_pg_pool *p, struct iot_pg_conn **out);
void iot_pg_put(struct iot_pg_pool *p, struct iot_pg_conn *c);

/* ---- parameters ---------------------------------------------------------- */

enum { IOT_PG_MAX_PARAMS = 16 };

/* Parameters in $1, $2, … order. Text is sent in binary format with an
 * explicit length, so it is neither copied nor required to be terminated
 * within its field; numbers go as decimal text into num[], which values[]
 * points at: fill the struct in place, do not copy it. */
struct iot_pg_params {
    int n;
    bool overflow; /* more than IOT_PG_MAX_PARAMS: exec fails with IOT_EINTERNAL */
    const char *values[IOT_PG_MAX_PARAMS];
    int lengths[IOT_PG_MAX_PARAMS];
    int formats[IOT_PG_MAX_PARAMS];
    char num[IOT_PG_MAX_PARAMS][24];
};

void iot_pg_param_int(struct iot_pg_params *p, int64_t v);
void iot_pg_param_bool(struct iot_pg_params *p, bool v);
void iot_pg_param_null(struct iot_pg_params *p);
/* 0 ("never") is sent as NULL. */
void iot_pg_param_time(struct iot_pg_params *p, int64_t ms);
/* At most cap - 1 bytes of s (a fixed-size field of capacity cap). Borrowed:
 * s must live until the statement has run. */
void iot_pg_param_text(struct iot_pg_params *p, const char *s, size_t cap);
/* A NUL-terminated string in text format (e.g. an array literal). Borrowed. */
void iot_pg_param_literal(struct iot_pg_params *p, const char *s);
#define IOT_PG_PARAM_FIELD(p, field) iot_pg_param_text((p), (field), sizeof(field))

/* ---- execution ----------------------------------------------------------- */

/* Runs prepared statement `stmt` (an index into schema->stmts). On IOT_OK
 * *out holds the result; on failure nothing is returned and the error is
 * mapped: 23505 → IOT_ECONFLICT, 23503 → IOT_ENOTFOUND, other integrity and
 * data errors → IOT_EINVAL, statement timeout or lock timeout →
 * IOT_ETIMEOUT, a broken connection → IOT_EUNAVAILABLE. */
int iot_pg_exec(struct iot_pg_conn *c, int stmt, const struct iot_pg_params *params,
                PGresult **out);

/* Commands without parameters or results (BEGIN, SET, a migration step),
 * through the simple protocol: `sql` may hold several statements. */
int iot_pg_command(struct iot_pg_conn *c, const char *sql);

/* One unprepared statement with parameters (`params` may be NULL), for what
 * runs before the statements are prepared (migrations). As iot_pg_exec. */
int iot_pg_query(struct iot_pg_conn *c, const char *sql, const struct iot_pg_params *params,
                 PGresult **out);

/* BEGIN, or with `snapshot` a read-only REPEATABLE READ transaction, whose
 * statements all see one snapshot. iot_pg_end commits when rc is IOT_OK,
 * else rolls back, and returns the final status (a failed COMMIT turns
 * IOT_OK into its error). */
int iot_pg_begin(struct iot_pg_conn *c, bool snapshot);
int iot_pg_end(struct iot_pg_conn *c, int rc);

/* ---- results ------------------------------------------------------------- */

/* Text-format column readers. NULL reads as 0 / false / "". */
int64_t iot_pg_i64(const PGresult *r, int row, int col);
bool iot_pg_bool(const PGresult *r, int row, int col);
/* Copies at most cap - 1 bytes and terminates. */
void iot_pg_text(const PGresult *r, int row, int col, char *dst, size_t cap);
#define IOT_PG_FIELD(r, row, col, field) iot_pg_text((r), (row), (col), (field), sizeof(field))
/* Rows an INSERT/UPDATE/DELETE touched. */
int64_t iot_pg_changed(const PGresult *r);

/* ---- work on a pooled connection ----------------------------------------- */

enum {
    IOT_PG_RETRY = 1u, /* idempotent: run once more on a fresh connection if
                          the connection broke under it */
};

/* Takes a connection, runs fn(c, arg), puts the connection back and returns
 * fn's status. fn must leave no transaction open (iot_pg_end). */
typedef int (*iot_pg_job_fn)(struct iot_pg_conn *c, void *arg);
int iot_pg_with_conn(struct iot_pg_pool *p, unsigned flags, iot_pg_job_fn fn, void *arg);

typedef void (*iot_pg_row_fn)(const PGresult *r, int row, void *out);

/* Takes a connection, runs `stmt` and puts the connection back. With `rd`,
 * the first row is read into `out` (no row: IOT_ENOTFOUND); with `changed`,
 * the number of rows touched is stored there. */
int iot_pg_run(struct iot_pg_pool *p, int stmt, const struct iot_pg_params *params,
               unsigned flags, iot_pg_row_fn rd, void *out, int64_t *changed);

#endif
