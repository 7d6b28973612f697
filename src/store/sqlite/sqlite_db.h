/* sqlite_db.h — what the SQLite stores share: "sqlite:" URL parsing, a fixed
 * pool of connections with cached prepared statements, write transactions
 * serialised in-process, versioned migrations at open, and the mapping of
 * SQLite result codes to IOT_E*.
 *
 * Internal to src/store/sqlite/. The pool handle is thread-safe; a connection
 * taken from it belongs to the calling thread until it is put back. */
#ifndef IOT_STORE_SQLITE_SQLITE_DB_H
#define IOT_STORE_SQLITE_SQLITE_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* What a store declares about its schema and its statements. */
struct iot_sqldb_schema {
    const char *const *migrations; /* step i takes user_version i to i + 1 */
    int n_migrations;
    const char *const *stmts; /* fixed statements by id, prepared on first use */
    int n_stmts;
    int n_dyn; /* slots for statements whose SQL is built at run time */
    const char *conn_sql; /* run on every connection after it opens (tuning
                             PRAGMAs), or NULL */
    /* NULL, or one entry per migration step (NULL for none): a query run
     * just before that step. A row back means the existing data cannot take
     * the step (e.g. duplicates a new unique index would refuse): the
     * migration stops with IOT_ECONFLICT, all steps rolled back, after
     * logging the row's first column, which should say what to fix. */
    const char *const *checks;
    /* NULL, or one entry per migration step (NULL for none): a query run
     * just after that step, in its transaction. A row back with a non-NULL
     * first column is logged as a warning once the migration has committed:
     * what the step did that the operator should know and act on. */
    const char *const *notes;
};

struct iot_sqldb;
struct iot_sqldb_conn;

/* Opens the pool on `url` (sqlite:///abs, sqlite://rel, sqlite:rel, a bare
 * path, or ":memory:" in any of those forms), creating the parent directory,
 * and applies missing migrations in one transaction. `schema` must outlive
 * the handle. On failure *out is NULL and nothing is left open. */
int iot_sqldb_open(const char *url, const struct iot_sqldb_schema *schema, struct iot_sqldb **out);
/* The same with a durability choice: durable → synchronous=FULL (the WAL is
 * fsynced at every commit: survives power loss); otherwise NORMAL (a commit
 * survives a crash of the process, not of the machine). iot_sqldb_open is
 * durable = false. */
int iot_sqldb_open_ex(const char *url, const struct iot_sqldb_schema *schema, bool durable,
                      struct iot_sqldb **out);
void iot_sqldb_close(struct iot_sqldb *db); /* NULL is a no-op; no op may be in flight */
/* A store's open slot on iot_sqldb_open: the pool into *self (NULL on
 * failure); IOT_EINVAL without self. */
int iot_sqldb_open_self(const char *url, const struct iot_sqldb_schema *schema, void **self);
/* A store's ping: runs fixed statement `id` (e.g. "SELECT 1"), which
 * answers a row when the database is usable. */
int iot_sqldb_ping(struct iot_sqldb *db, int id);
/* The database file a URL of the forms above names, into path (opening
 * nothing): IOT_ENOTFOUND for a memory database or an empty path,
 * IOT_EINVAL when it does not fit. */
int iot_sqldb_url_file(const char *url, char *path, size_t size);
/* The database file's path, or NULL for a memory database. */
const char *iot_sqldb_path(const struct iot_sqldb *db);

/* Takes a connection (waits while all are in use) / gives it back. */
struct iot_sqldb_conn *iot_sqldb_get(struct iot_sqldb *db);
void iot_sqldb_put(struct iot_sqldb *db, struct iot_sqldb_conn *c);

/* A write: takes the writer lock and a connection, then BEGIN IMMEDIATE.
 * write_end commits when rc is IOT_OK, else rolls back, releases both and
 * returns the final status (a failed COMMIT turns IOT_OK into an error). */
int iot_sqldb_write_begin(struct iot_sqldb *db, struct iot_sqldb_conn **out);
int iot_sqldb_write_end(struct iot_sqldb *db, struct iot_sqldb_conn *c, int rc);

/* A read transaction on a connection already taken: one snapshot for
 * several statements. read_end ends it whatever happened. */
int iot_sqldb_read_begin(struct iot_sqldb_conn *c);
void iot_sqldb_read_end(struct iot_sqldb_conn *c);

sqlite3 *iot_sqldb_handle(struct iot_sqldb_conn *c);

/* The connection's cached statement `id` of schema->stmts. Borrowed: reset
 * it with iot_sqldb_done() before putting the connection back. */
int iot_sqldb_stmt(struct iot_sqldb_conn *c, int id, sqlite3_stmt **out);

/* The cached statement in dynamic slot `slot`; on first use its SQL is
 * written by build(arg, buf, size), which returns IOT_OK or an error. */
typedef int (*iot_sqldb_build_fn)(const void *arg, char *buf, size_t size);
int iot_sqldb_dyn_stmt(struct iot_sqldb_conn *c, int slot, iot_sqldb_build_fn build,
                       const void *arg, sqlite3_stmt **out);

/* SQLite (extended) result code → IOT_OK / IOT_E*: UNIQUE and PRIMARYKEY
 * violations are IOT_ECONFLICT, FOREIGNKEY IOT_ENOTFOUND, BUSY/LOCKED (after
 * the busy timeout) IOT_ETIMEOUT, I/O and open failures IOT_EUNAVAILABLE. */
int iot_sqldb_map(int rc);

/* Resets a statement and clears its bindings (which may point into caller
 * memory bound SQLITE_STATIC). */
void iot_sqldb_done(sqlite3_stmt *st);

/* Steps a statement that returns no row, then iot_sqldb_done(). */
int iot_sqldb_step_done(sqlite3_stmt *st);

#endif
