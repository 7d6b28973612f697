/* sqlite_db.c — connection pool, transactions and migrations shared by the
 * SQLite stores.
 *
 * Concurrency model: a fixed pool of POOL_SIZE connections handed out from a
 * free list, plus one in-process writer mutex.
 *  - Why a pool and not one connection under a mutex: in WAL mode readers
 *    never block each other nor the writer, so lookups (the API-key path, the
 *    listings) run in parallel with a write instead of queueing behind it.
 *    Each connection has its own prepared statements and is used by one
 *    thread at a time, so connections are opened SQLITE_OPEN_NOMUTEX.
 *  - Why a writer mutex on top of BEGIN IMMEDIATE: SQLite allows one writer
 *    at a time; without the mutex our own writers would contend inside the
 *    busy handler (sleep and retry). With it they queue on a pthread mutex,
 *    and the busy wait only covers other processes sharing the file.
 *  - Lock order: writer mutex, then a connection. Readers take only a
 *    connection, so a writer waiting for one always gets it.
 *
 * Migrations: PRAGMA user_version counts the steps applied. open applies the
 * missing ones in one BEGIN IMMEDIATE transaction, so concurrent openers and
 * re-opens are safe and never re-run a step. */
#include "store/sqlite/sqlite_db.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

enum {
    POOL_SIZE = 4,
    BUSY_TIMEOUT_MS = 5000,
    NAME_MAX_LEN = 4096,
    DYN_SQL_MAX = 4096, /* 32-row upserts of 12 columns take ~1.9 KB */
};

enum tx_stmt { TX_BEGIN, TX_BEGIN_WRITE, TX_COMMIT, TX_ROLLBACK, TX__COUNT };
static const char *const tx_sql[TX__COUNT] = {
    [TX_BEGIN] = "BEGIN",
    [TX_BEGIN_WRITE] = "BEGIN IMMEDIATE", /* take the write lock up front: no
                                             failed upgrade half-way through */
    [TX_COMMIT] = "COMMIT",
    [TX_ROLLBACK] = "ROLLBACK",
};

struct iot_sqldb_conn {
    sqlite3 *db;
    int64_t busy_since_us;
    sqlite3_stmt *tx[TX__COUNT];
    sqlite3_stmt **st; /* schema->n_stmts fixed, then schema->n_dyn dynamic */
    int n_st;
    const struct iot_sqldb_schema *schema;
};

struct iot_sqldb {
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    pthread_mutex_t write_mu;
    struct iot_sqldb_conn *free[POOL_SIZE];
    int nfree;
    int nconns;
    struct iot_sqldb_conn conns[POOL_SIZE];
    char path[NAME_MAX_LEN]; /* the database file; "" for a memory database */
};

int iot_sqldb_map(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return IOT_OK;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return IOT_ECONFLICT;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return IOT_ENOTFOUND; /* the row referred to does not exist */
        return IOT_EINVAL;        /* NOT NULL, CHECK: bad input */
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return IOT_ETIMEOUT; /* after BUSY_TIMEOUT_MS of waiting */
    case SQLITE_NOMEM: return IOT_ENOMEM;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM: return IOT_EUNAVAILABLE;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return IOT_EINVAL;
    default: return IOT_EINTERNAL;
    }
}

/* Busy handler: short growing sleeps (50 us .. 2 ms) instead of SQLite's
 * default 1..100 ms steps, because waits here are brief (another process's
 * commit, or a memdb reader finishing one chunk). */
static int busy_wait(void *arg, int count)
{
    struct iot_sqldb_conn *c = arg;
    int64_t now = iot_mono_us();
    if (count == 0)
        c->busy_since_us = now;
    if (now - c->busy_since_us >= (int64_t)BUSY_TIMEOUT_MS * 1000)
        return 0;
    long us = count < 6 ? 50L << count : 2000L;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

/* ---- statements -------------------------------------------------------- */

static int prepare(struct iot_sqldb_conn *c, const char *sql, sqlite3_stmt **slot)
{
    return iot_sqldb_map(sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL));
}

sqlite3 *iot_sqldb_handle(struct iot_sqldb_conn *c) { return c->db; }

int iot_sqldb_stmt(struct iot_sqldb_conn *c, int id, sqlite3_stmt **out)
{
    if (id < 0 || id >= c->schema->n_stmts)
        return IOT_EINTERNAL;
    if (!c->st[id]) {
        int rc = prepare(c, c->schema->stmts[id], &c->st[id]);
        if (rc)
            return rc;
    }
    *out = c->st[id];
    return IOT_OK;
}

int iot_sqldb_dyn_stmt(struct iot_sqldb_conn *c, int slot, iot_sqldb_build_fn build,
                       const void *arg, sqlite3_stmt **out)
{
    if (slot < 0 || slot >= c->schema->n_dyn)
        return IOT_EINTERNAL;
    sqlite3_stmt **p = &c->st[c->schema->n_stmts + slot];
    if (!*p) {
        char sql[DYN_SQL_MAX];
        int rc = build(arg, sql, sizeof sql);
        if (rc == IOT_OK)
            rc = prepare(c, sql, p);
        if (rc)
            return rc;
    }
    *out = *p;
    return IOT_OK;
}

void iot_sqldb_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int iot_sqldb_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    iot_sqldb_done(st);
    return rc == SQLITE_DONE ? IOT_OK : iot_sqldb_map(rc);
}

static int exec_tx(struct iot_sqldb_conn *c, enum tx_stmt id)
{
    if (!c->tx[id]) {
        int rc = prepare(c, tx_sql[id], &c->tx[id]);
        if (rc)
            return rc;
    }
    return iot_sqldb_step_done(c->tx[id]);
}

/* ---- pool and transactions --------------------------------------------- */

struct iot_sqldb_conn *iot_sqldb_get(struct iot_sqldb *db)
{
    pthread_mutex_lock(&db->pool_mu);
    while (db->nfree == 0)
        pthread_cond_wait(&db->pool_cv, &db->pool_mu);
    struct iot_sqldb_conn *c = db->free[--db->nfree];
    pthread_mutex_unlock(&db->pool_mu);
    return c;
}

void iot_sqldb_put(struct iot_sqldb *db, struct iot_sqldb_conn *c)
{
    pthread_mutex_lock(&db->pool_mu);
    db->free[db->nfree++] = c;
    pthread_cond_signal(&db->pool_cv);
    pthread_mutex_unlock(&db->pool_mu);
}

int iot_sqldb_write_begin(struct iot_sqldb *db, struct iot_sqldb_conn **out)
{
    pthread_mutex_lock(&db->write_mu);
    struct iot_sqldb_conn *c = iot_sqldb_get(db);
    int rc = exec_tx(c, TX_BEGIN_WRITE);
    if (rc) {
        iot_sqldb_put(db, c);
        pthread_mutex_unlock(&db->write_mu);
        return rc;
    }
    *out = c;
    return IOT_OK;
}

int iot_sqldb_write_end(struct iot_sqldb *db, struct iot_sqldb_conn *c, int rc)
{
    if (rc == IOT_OK)
        rc = exec_tx(c, TX_COMMIT);
    /* a failed COMMIT (BUSY past the timeout) leaves the transaction open */
    if (rc != IOT_OK && !sqlite3_get_autocommit(c->db))
        exec_tx(c, TX_ROLLBACK);
    iot_sqldb_put(db, c);
    pthread_mutex_unlock(&db->write_mu);
    return rc;
}

int iot_sqldb_read_begin(struct iot_sqldb_conn *c) { return exec_tx(c, TX_BEGIN); }

void iot_sqldb_read_end(struct iot_sqldb_conn *c)
{
    if (!sqlite3_get_autocommit(c->db) && exec_tx(c, TX_COMMIT) != IOT_OK)
        exec_tx(c, TX_ROLLBACK);
}

/* ---- open / close ------------------------------------------------------ */

static atomic_uint memdb_seq;

/* What a URL names: the text after "sqlite:" and an optional "//". */
static const char *url_target(const char *url)
{
    const char *p = url;
    if (strncasecmp(p, "sqlite:", 7) == 0) {
        p += 7;
        if (strncmp(p, "//", 2) == 0)
            p += 2;
    }
    return p;
}

int iot_sqldb_url_file(const char *url, char *path, size_t size)
{
    const char *p = url ? url_target(url) : "";
    if (*p == '\0' || strcmp(p, ":memory:") == 0)
        return IOT_ENOTFOUND;
    int n = snprintf(path, size, "%s", p);
    return n > 0 && (size_t)n < size ? IOT_OK : IOT_EINVAL;
}

/* The filename for sqlite3_open_v2. Memory databases become a uniquely named
 * file of the memdb VFS, which every connection of the pool opens and
 * shares. memdb and not shared cache: memdb locks like a file, so the busy
 * handler applies, while shared-cache mode fails at once with
 * SQLITE_LOCKED when a reader and a writer meet. */
static int parse_url(const char *url, char *name, size_t size, bool *memory)
{
    const char *p = url_target(url);
    if (*p == '\0')
        return IOT_EINVAL;
    *memory = strcmp(p, ":memory:") == 0;
    int n;
    if (*memory) {
        unsigned char rnd[8];
        char hex[2 * sizeof rnd + 1];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        n = snprintf(name, size, "file:/iotflowd-%ld-%u-%s?vfs=memdb", (long)getpid(),
                     atomic_fetch_add(&memdb_seq, 1), hex);
    } else {
        n = snprintf(name, size, "%s", p);
    }
    return n > 0 && (size_t)n < size ? IOT_OK : IOT_EINVAL;
}

/* mkdir -p of the directory part of `path`. */
static int make_parent_dirs(const char *path)
{
    char buf[NAME_MAX_LEN];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return IOT_EINVAL;
    memcpy(buf, path, len + 1);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return IOT_OK;
    *slash = '\0';
    for (char *p = buf + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return IOT_EUNAVAILABLE;
            if (end)
                return IOT_OK;
            *p = '/';
        }
    }
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return iot_sqldb_map(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int read_user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return iot_sqldb_map(rc);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? IOT_OK : iot_sqldb_map(rc);
}

/* Runs the check of migration step `step` (schema->checks): IOT_OK when it
 * returns no row, IOT_ECONFLICT after logging its message when it does. */
static int check_step(sqlite3 *db, const struct iot_sqldb_schema *schema, int step)
{
    if (!schema->checks || !schema->checks[step])
        return IOT_OK;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, schema->checks[step], -1, &st, NULL);
    if (rc != SQLITE_OK)
        return iot_sqldb_map(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *why = sqlite3_column_text(st, 0);
        IOT_ERROR("sqlite: schema migration to version %d refused: %s", step + 1,
                  why ? (const char *)why : "the existing data does not allow it");
        rc = IOT_ECONFLICT;
    } else {
        rc = rc == SQLITE_DONE ? IOT_OK : iot_sqldb_map(rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs the note of migration step `step` (schema->notes) and keeps its text
 * in note[step] (heap, NULL for none), to be logged after the commit. */
static int note_step(sqlite3 *db, const struct iot_sqldb_schema *schema, int step, char **note)
{
    if (!schema->notes || !schema->notes[step])
        return IOT_OK;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, schema->notes[step], -1, &st, NULL);
    if (rc != SQLITE_OK)
        return iot_sqldb_map(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(st, 0);
        note[step] = text ? strdup((const char *)text) : NULL;
        rc = !text || note[step] ? IOT_OK : IOT_ENOMEM;
    } else {
        rc = rc == SQLITE_DONE ? IOT_OK : iot_sqldb_map(rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Logs (after a commit) and frees the notes of the steps just taken. */
static void flush_notes(char **note, int from, int to, bool committed)
{
    for (int i = from; i < to; i++) {
        if (note[i] && committed)
            IOT_WARN("sqlite: schema migration to version %d: %s", i + 1, note[i]);
        free(note[i]);
    }
    free(note);
}

/* Applies the missing migrations, all or none. A database written by a newer
 * iotflowd (user_version beyond ours) is refused, never downgraded. */
static int migrate(sqlite3 *db, const struct iot_sqldb_schema *schema)
{
    char **note = calloc((size_t)schema->n_migrations + 1, sizeof *note);
    if (!note)
        return IOT_ENOMEM;
    int rc = exec_sql(db, "BEGIN IMMEDIATE");
    if (rc) {
        free(note);
        return rc;
    }
    int version = 0;
    rc = read_user_version(db, &version);
    if (rc == IOT_OK && version > schema->n_migrations)
        rc = IOT_EINTERNAL;
    int from = rc == IOT_OK ? version : schema->n_migrations;
    for (int i = version; rc == IOT_OK && i < schema->n_migrations; i++) {
        rc = check_step(db, schema, i);
        if (rc == IOT_OK)
            rc = exec_sql(db, schema->migrations[i]);
        if (rc == IOT_OK)
            rc = note_step(db, schema, i, note);
    }
    if (rc == IOT_OK && version < schema->n_migrations) {
        char sql[48];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", schema->n_migrations);
        rc = exec_sql(db, sql);
    }
    if (rc == IOT_OK)
        rc = exec_sql(db, "COMMIT");
    if (rc != IOT_OK)
        exec_sql(db, "ROLLBACK");
    flush_notes(note, from, schema->n_migrations, rc == IOT_OK);
    return rc;
}

static void conn_close(struct iot_sqldb_conn *c)
{
    for (int i = 0; i < TX__COUNT; i++)
        sqlite3_finalize(c->tx[i]);
    for (int i = 0; c->st && i < c->n_st; i++)
        sqlite3_finalize(c->st[i]);
    free(c->st);
    sqlite3_close(c->db);
    memset(c, 0, sizeof *c);
}

/* Opens one pool connection; the first one also sets WAL and migrates. */
static int conn_open(struct iot_sqldb_conn *c, const char *name, bool memory, bool first,
                     bool durable, const struct iot_sqldb_schema *schema)
{
    c->schema = schema;
    c->n_st = schema->n_stmts + schema->n_dyn;
    c->st = calloc((size_t)c->n_st + 1, sizeof *c->st);
    if (!c->st)
        return IOT_ENOMEM;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (memory)
        flags |= SQLITE_OPEN_URI;
    int rc = iot_sqldb_map(sqlite3_open_v2(name, &c->db, flags, NULL));
    if (rc)
        return rc == IOT_EINTERNAL ? IOT_EUNAVAILABLE : rc;
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_handler(c->db, busy_wait, c);
    rc = exec_sql(c->db, durable ? "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL"
                                 : "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL");
    if (rc == IOT_OK && schema->conn_sql)
        rc = exec_sql(c->db, schema->conn_sql);
    /* WAL is a property of the file, set once; memdb has no WAL. */
    if (rc == IOT_OK && first && !memory)
        rc = exec_sql(c->db, "PRAGMA journal_mode = WAL");
    if (rc == IOT_OK && first)
        rc = migrate(c->db, schema);
    return rc;
}

void iot_sqldb_close(struct iot_sqldb *db)
{
    if (!db)
        return;
    for (int i = 0; i < db->nconns; i++)
        conn_close(&db->conns[i]);
    pthread_cond_destroy(&db->pool_cv);
    pthread_mutex_destroy(&db->pool_mu);
    pthread_mutex_destroy(&db->write_mu);
    free(db);
}

const char *iot_sqldb_path(const struct iot_sqldb *db) { return db->path[0] ? db->path : NULL; }

int iot_sqldb_open(const char *url, const struct iot_sqldb_schema *schema, struct iot_sqldb **out)
{
    return iot_sqldb_open_ex(url, schema, false, out);
}

int iot_sqldb_open_self(const char *url, const struct iot_sqldb_schema *schema, void **self)
{
    if (!self)
        return IOT_EINVAL;
    struct iot_sqldb *db = NULL;
    int rc = iot_sqldb_open(url, schema, &db);
    *self = db;
    return rc;
}

int iot_sqldb_ping(struct iot_sqldb *db, int id)
{
    struct iot_sqldb_conn *c = iot_sqldb_get(db);
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, id, &st);
    if (rc == IOT_OK) {
        int step = sqlite3_step(st);
        rc = step == SQLITE_ROW ? IOT_OK : iot_sqldb_map(step);
        iot_sqldb_done(st);
    }
    iot_sqldb_put(db, c);
    return rc;
}

int iot_sqldb_open_ex(const char *url, const struct iot_sqldb_schema *schema, bool durable,
                      struct iot_sqldb **out)
{
    if (!url || !schema || !out)
        return IOT_EINVAL;
    *out = NULL;
    if (sodium_init() < 0)
        return IOT_EINTERNAL;
    char name[NAME_MAX_LEN];
    bool memory = false;
    int rc = parse_url(url, name, sizeof name, &memory);
    if (rc == IOT_OK && !memory)
        rc = make_parent_dirs(name);
    if (rc)
        return rc;
    struct iot_sqldb *db = calloc(1, sizeof *db);
    if (!db)
        return IOT_ENOMEM;
    pthread_mutex_init(&db->pool_mu, NULL);
    pthread_cond_init(&db->pool_cv, NULL);
    pthread_mutex_init(&db->write_mu, NULL);
    if (!memory)
        snprintf(db->path, sizeof db->path, "%s", name);
    for (int i = 0; i < POOL_SIZE && rc == IOT_OK; i++) {
        db->nconns++; /* counted first: a half-opened connection still needs closing */
        rc = conn_open(&db->conns[i], name, memory, i == 0, durable, schema);
        db->free[db->nfree++] = &db->conns[i];
    }
    if (rc) {
        iot_sqldb_close(db);
        return rc;
    }
    *out = db;
    return IOT_OK;
}
