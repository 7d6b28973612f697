/* telemetry_sqlite_read.c — the scans of the SQLite telemetry store:
 * query_device, query_user, count_user, latest, rollups, samples, catalog,
 * export_scan.
 *
 * Every scan runs one engine: rows are copied out in chunks (up to
 * CHUNK_ROWS rows or about CHUNK_BYTES of text) with a connection held, then
 * the connection goes back to the pool and the caller's callback runs on the
 * copies. So a callback may call back into the store, even to write, without
 * deadlocking on an exhausted pool, and a slow consumer never pins a read
 * snapshot (which would stop WAL checkpoints). A later chunk continues after
 * the last row of the previous one (keyset), never by OFFSET.
 *
 * Text is returned as stored: data/meta JSON is not parsed on this path.
 *
 * Every scan first flushes the batches write_batch left staged in the
 * commit log (iot_tmsql_sync: one atomic load when there are none), so it
 * reflects every message written before the call. */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/err.h"

enum {
    CHUNK_ROWS = 256,
    CHUNK_BYTES = 256 * 1024,
    MAX_COLS = 6,
};

/* One copied column value. Text lives in the chunk's text buffer, NUL
 * terminated, at u.off. */
struct cell {
    int type; /* SQLITE_INTEGER, _FLOAT, _TEXT (also BLOB) or _NULL */
    uint32_t len;
    union {
        int64_t i;
        double d;
        size_t off;
    } u;
};

struct chunk {
    struct cell *cells; /* CHUNK_ROWS x scan->ncols */
    size_t n;           /* rows copied */
    char *text;
    size_t text_len, text_cap;
};

struct scan;
/* Binds the statement's parameters for the next chunk of `want` rows. */
typedef void (*scan_bind_fn)(sqlite3_stmt *st, const struct scan *sc, int64_t want);
/* Delivers one row to the caller; non-zero stops the scan. */
typedef int (*scan_emit_fn)(const struct scan *sc, const struct cell *row, const char *text);
/* Moves the keyset past `row`, the last row of a chunk. */
typedef void (*scan_next_fn)(struct scan *sc, const struct cell *row, const char *text);

struct scan {
    enum iot_tmsql_stmt stmt;
    int ncols;
    scan_bind_fn bind;
    scan_emit_fn emit;
    scan_next_fn next;
    int64_t left; /* rows still wanted */
    /* Bytes of text still wanted (struct iot_tm_range's max_bytes; 0 =
     * none): a chunk ends at the row that uses the last of them, so a page
     * of large rows copies no more than the page holds. */
    int64_t budget;
    /* parameters */
    int64_t id; /* device_id, or user_id for query_user */
    int64_t from, to, width;
    const char *name;
    char path[IOT_TMSQL_PATH_MAX];
    /* keyset: the last row delivered */
    int64_t k_ts, k_seq, k_dev;
    char k_name[IOT_TM_NAME_MAX + 1];
    union {
        iot_tm_record_fn record;
        iot_tm_latest_fn latest;
        iot_tm_rollup_fn rollup;
        iot_tm_sample_fn sample;
        iot_tm_typed_sample_fn typed_sample;
        iot_tm_catalog_fn catalog;
        iot_tm_export_fn export;
    } fn;
    void *ctx;
};

/* ---- the engine ----------------------------------------------------------- */

static int text_reserve(struct chunk *ch, size_t more)
{
    if (ch->text_len + more <= ch->text_cap)
        return IOT_OK;
    size_t cap = ch->text_cap ? ch->text_cap : 4096;
    while (cap < ch->text_len + more)
        cap *= 2;
    char *p = realloc(ch->text, cap);
    if (!p)
        return IOT_ENOMEM;
    ch->text = p;
    ch->text_cap = cap;
    return IOT_OK;
}

static int copy_cell(sqlite3_stmt *st, int i, struct chunk *ch, struct cell *c)
{
    c->type = sqlite3_column_type(st, i);
    switch (c->type) {
    case SQLITE_INTEGER: c->u.i = sqlite3_column_int64(st, i); return IOT_OK;
    case SQLITE_FLOAT: c->u.d = sqlite3_column_double(st, i); return IOT_OK;
    case SQLITE_NULL: return IOT_OK;
    default: break;
    }
    c->type = SQLITE_TEXT;
    const unsigned char *p = sqlite3_column_text(st, i);
    size_t len = (size_t)sqlite3_column_bytes(st, i);
    if (!p && len)
        return IOT_ENOMEM;
    if (text_reserve(ch, len + 1) != IOT_OK)
        return IOT_ENOMEM;
    if (len)
        memcpy(ch->text + ch->text_len, p, len);
    ch->text[ch->text_len + len] = '\0';
    c->u.off = ch->text_len;
    c->len = (uint32_t)len;
    ch->text_len += len + 1;
    return IOT_OK;
}

/* Bytes of a row's text columns, as the byte budget counts them. */
static int64_t row_text_bytes(const struct cell *row, int ncols)
{
    int64_t n = 0;
    for (int i = 0; i < ncols; i++)
        n += row[i].type == SQLITE_TEXT ? (int64_t)row[i].len : 0;
    return n;
}

/* Copies up to `want` rows with one connection hold, and no row after the
 * one that uses the last of *budget. *exhausted: the query ended before
 * `want` rows, so no later chunk can find more. */
static int fill_chunk(struct iot_tmsql *s, const struct scan *sc, int64_t want, struct chunk *ch,
                      bool *exhausted, int64_t *budget)
{
    ch->n = 0;
    ch->text_len = 0;
    *exhausted = false;
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, sc->stmt, &st);
    if (rc) {
        iot_sqldb_put(s->db, c);
        return rc;
    }
    sc->bind(st, sc, want);
    while (rc == IOT_OK && (int64_t)ch->n < want && ch->text_len < CHUNK_BYTES && *budget > 0) {
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            rc = src == SQLITE_DONE ? IOT_OK : iot_sqldb_map(src);
            *exhausted = true;
            break;
        }
        struct cell *row = &ch->cells[ch->n * (size_t)sc->ncols];
        for (int i = 0; i < sc->ncols && rc == IOT_OK; i++)
            rc = copy_cell(st, i, ch, &row[i]);
        *budget -= row_text_bytes(row, sc->ncols);
        ch->n++;
    }
    iot_sqldb_done(st);
    iot_sqldb_put(s->db, c);
    return rc;
}

static int run_scan(struct iot_tmsql *s, struct scan *sc)
{
    if (sc->left <= 0)
        return IOT_OK;
    struct chunk ch = {0};
    size_t rows = sc->left < CHUNK_ROWS ? (size_t)sc->left : CHUNK_ROWS;
    ch.cells = malloc(rows * (size_t)sc->ncols * sizeof *ch.cells);
    if (!ch.cells)
        return IOT_ENOMEM;
    int rc = IOT_OK;
    bool exhausted = false, stop = false;
    int64_t budget = sc->budget > 0 ? sc->budget : INT64_MAX;
    while (!exhausted && !stop && sc->left > 0 && budget > 0) {
        int64_t want = sc->left < CHUNK_ROWS ? sc->left : CHUNK_ROWS;
        rc = fill_chunk(s, sc, want, &ch, &exhausted, &budget);
        if (rc || ch.n == 0)
            break;
        sc->next(sc, &ch.cells[(ch.n - 1) * (size_t)sc->ncols], ch.text);
        for (size_t i = 0; i < ch.n && !stop; i++)
            stop = sc->emit(sc, &ch.cells[i * (size_t)sc->ncols], ch.text) != 0;
        sc->left -= (int64_t)ch.n;
    }
    free(ch.cells);
    free(ch.text);
    return rc;
}

/* ---- cells ------------------------------------------------------------------ */

/* A REAL outside int64 (an overflowed sum, say) clamps: converting it
 * would be undefined. 2^63 is exact as a double; -2^63 is INT64_MIN. */
static int64_t cell_i64(const struct cell *c)
{
    if (c->type == SQLITE_INTEGER)
        return c->u.i;
    if (c->type != SQLITE_FLOAT || c->u.d != c->u.d)
        return 0;
    if (c->u.d >= 9223372036854775808.0)
        return INT64_MAX;
    if (c->u.d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)c->u.d;
}

static double cell_f64(const struct cell *c)
{
    return c->type == SQLITE_FLOAT ? c->u.d : c->type == SQLITE_INTEGER ? (double)c->u.i : 0.0;
}

/* NULL for SQL NULL. */
static const char *cell_text(const struct cell *c, const char *text, size_t *len)
{
    if (c->type != SQLITE_TEXT) {
        *len = 0;
        return NULL;
    }
    *len = c->len;
    return text + c->u.off;
}

static void keep_name(struct scan *sc, const struct cell *c, const char *text)
{
    size_t len;
    const char *p = cell_text(c, text, &len);
    if (len > IOT_TM_NAME_MAX)
        len = IOT_TM_NAME_MAX; /* cannot happen: names are checked on write */
    if (p)
        memcpy(sc->k_name, p, len);
    sc->k_name[len] = '\0';
}

/* ---- query_device / query_user ----------------------------------------------- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static void bind_device_q(sqlite3_stmt *st, const struct scan *sc, int64_t want)
{
    sqlite3_bind_int64(st, 1, sc->id);
    sqlite3_bind_int64(st, 2, sc->from);
    sqlite3_bind_int64(st, 3, min64(sc->to, sc->k_ts)); /* lets the index bound ts */
    sqlite3_bind_int64(st, 4, sc->k_ts);
    sqlite3_bind_int64(st, 5, sc->k_seq);
    sqlite3_bind_int64(st, 6, want);
}

static void bind_user_q(sqlite3_stmt *st, const struct scan *sc, int64_t want)
{
    sqlite3_bind_int64(st, 1, sc->id);
    sqlite3_bind_int64(st, 2, sc->from);
    sqlite3_bind_int64(st, 3, min64(sc->to, sc->k_ts));
    sqlite3_bind_int64(st, 4, sc->k_ts);
    sqlite3_bind_int64(st, 5, sc->k_seq);
    sqlite3_bind_int64(st, 6, sc->k_dev);
    sqlite3_bind_int64(st, 7, want);
}

/* Columns: ts, seq, data, meta[, device_id]. */
static int emit_record(const struct scan *sc, const struct cell *row, const char *text)
{
    struct iot_tm_record r = {
        .device_id = sc->ncols > 4 ? cell_i64(&row[4]) : sc->id,
        .ts = cell_i64(&row[0]),
        .seq = cell_i64(&row[1]),
    };
    r.data_json = cell_text(&row[2], text, &r.data_len);
    if (!r.data_json)
        r.data_json = "";
    r.meta_json = cell_text(&row[3], text, &r.meta_len);
    return sc->fn.record(sc->ctx, &r);
}

static void next_record(struct scan *sc, const struct cell *row, const char *text)
{
    sc->k_ts = cell_i64(&row[0]);
    sc->k_seq = cell_i64(&row[1]);
    if (sc->ncols > 4)
        sc->k_dev = cell_i64(&row[4]);
}

static int check_range(const struct iot_tm_range *range, iot_tm_record_fn fn)
{
    return range && fn && range->limit >= 0 && range->max_bytes >= 0 ? IOT_OK : IOT_EINVAL;
}

int iot_tmsql_query_device(void *self, int64_t device_id, const struct iot_tm_range *range,
                           iot_tm_record_fn fn, void *ctx)
{
    int rc = check_range(range, fn);
    if (rc)
        return rc;
    struct scan sc = {.stmt = TMS_Q_DEVICE, .ncols = 4, .bind = bind_device_q,
                      .emit = emit_record, .next = next_record, .left = range->limit,
                      .budget = range->max_bytes, .id = device_id, .from = range->from, .to = range->to,
                      .k_ts = range->before_ts, .k_seq = range->before_seq,
                      .fn.record = fn, .ctx = ctx};
    rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}

/* The caller's cursor is (ts, seq) only; inside one call chunks continue on
 * (ts, seq, device_id), so devices that share a (ts, seq) are not skipped
 * between chunks. k_dev = INT64_MIN makes (ts, seq, dev) < (bts, bseq, MIN)
 * mean exactly (ts, seq) < (bts, bseq). */
int iot_tmsql_query_user(void *self, int64_t user_id, const struct iot_tm_range *range,
                         iot_tm_record_fn fn, void *ctx)
{
    int rc = check_range(range, fn);
    if (rc)
        return rc;
    struct scan sc = {.stmt = TMS_Q_USER, .ncols = 5, .bind = bind_user_q, .emit = emit_record,
                      .next = next_record, .left = range->limit,
                      .budget = range->max_bytes, .id = user_id,
                      .from = range->from, .to = range->to, .k_ts = range->before_ts,
                      .k_seq = range->before_seq, .k_dev = INT64_MIN, .fn.record = fn,
                      .ctx = ctx};
    rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}

int iot_tmsql_count_user(void *self, int64_t user_id, int64_t from, int64_t to, int64_t *count)
{
    struct iot_tmsql *s = self;
    if (!count)
        return IOT_EINVAL;
    int rc = iot_tmsql_sync(s);
    if (rc)
        return rc;
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, TMS_COUNT_USER, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, from);
        sqlite3_bind_int64(st, 3, to);
        rc = iot_tmsql_step_ints(st, count, 1);
    }
    iot_sqldb_put(s->db, c);
    return rc;
}

/* ---- latest and catalog (keyset on name) ------------------------------------ */

static void bind_by_name(sqlite3_stmt *st, const struct scan *sc, int64_t want)
{
    sqlite3_bind_int64(st, 1, sc->id);
    sqlite3_bind_text(st, 2, sc->k_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, want);
}

static void next_by_name(struct scan *sc, const struct cell *row, const char *text)
{
    keep_name(sc, &row[0], text);
}

/* Columns: name, type, num, str, ts, val (a number as given: INTEGER for
 * an integer, REAL for a real, with its sign when -0.0; NULL in rows older
 * than schema step 5 that were not integral). */
static int emit_latest(const struct scan *sc, const struct cell *row, const char *text)
{
    size_t name_len;
    struct iot_tm_latest l = {.name = cell_text(&row[0], text, &name_len),
                              .value.type = (enum iot_tm_type)cell_i64(&row[1]),
                              .ts = cell_i64(&row[4])};
    switch (l.value.type) {
    case IOT_TM_NUMBER:
        l.value.num = row[5].type == SQLITE_FLOAT ? row[5].u.d : cell_f64(&row[2]);
        l.value.is_int = row[5].type == SQLITE_INTEGER;
        l.value.i = row[5].type == SQLITE_INTEGER ? row[5].u.i : 0;
        break;
    case IOT_TM_BOOL: l.value.boolean = cell_f64(&row[2]) != 0.0; break;
    default:
        l.value.type = IOT_TM_STRING;
        l.value.str = cell_text(&row[3], text, &l.value.str_len);
        if (!l.value.str)
            l.value.str = "";
        break;
    }
    return l.name ? sc->fn.latest(sc->ctx, &l) : 0;
}

int iot_tmsql_latest(void *self, int64_t device_id, iot_tm_latest_fn fn, void *ctx)
{
    if (!fn)
        return IOT_EINVAL;
    struct scan sc = {.stmt = TMS_LATEST_SCAN, .ncols = 6, .bind = bind_by_name,
                      .emit = emit_latest, .next = next_by_name, .left = INT64_MAX,
                      .id = device_id, .fn.latest = fn, .ctx = ctx};
    int rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}

/* Columns: name, type, unit, first_seen, last_seen, count. */
static int emit_catalog(const struct scan *sc, const struct cell *row, const char *text)
{
    size_t len;
    struct iot_tm_catalog_entry e = {.name = cell_text(&row[0], text, &len),
                                     .type = (enum iot_tm_type)cell_i64(&row[1]),
                                     .unit = cell_text(&row[2], text, &len),
                                     .first_seen = cell_i64(&row[3]),
                                     .last_seen = cell_i64(&row[4]),
                                     .count = cell_i64(&row[5])};
    if (!e.unit)
        e.unit = "";
    return e.name ? sc->fn.catalog(sc->ctx, &e) : 0;
}

int iot_tmsql_catalog(void *self, int64_t device_id, iot_tm_catalog_fn fn, void *ctx)
{
    if (!fn)
        return IOT_EINVAL;
    struct scan sc = {.stmt = TMS_CATALOG_SCAN, .ncols = 6, .bind = bind_by_name,
                      .emit = emit_catalog, .next = next_by_name, .left = INT64_MAX,
                      .id = device_id, .fn.catalog = fn, .ctx = ctx};
    int rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}

/* ---- rollups ------------------------------------------------------------------ */

static void bind_rollups(sqlite3_stmt *st, const struct scan *sc, int64_t want)
{
    sqlite3_bind_int64(st, 1, sc->id);
    sqlite3_bind_text(st, 2, sc->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sc->width);
    sqlite3_bind_int64(st, 4, sc->from); /* advanced past each chunk */
    sqlite3_bind_int64(st, 5, sc->to);
    sqlite3_bind_int64(st, 6, want);
}

/* Columns: start, count, sum, vmin, vmax, ints, isum, imin, imax. isum is
 * exact while it is an INTEGER (an overflowing sum turned REAL, of which
 * only isum_exact = false is passed on). */
static int emit_rollup(const struct scan *sc, const struct cell *row, const char *text)
{
    struct iot_tm_rollup r = {.start = cell_i64(&row[0]), .width = sc->width,
                              .count = cell_i64(&row[1]), .sum = cell_f64(&row[2]),
                              .min = cell_f64(&row[3]), .max = cell_f64(&row[4]),
                              .ints = cell_i64(&row[5]),
                              .isum = row[6].type == SQLITE_INTEGER ? row[6].u.i : 0,
                              .imin = cell_i64(&row[7]), .imax = cell_i64(&row[8]),
                              .isum_exact = row[6].type == SQLITE_INTEGER};
    return sc->fn.rollup(sc->ctx, &r);
}

static void next_rollup(struct scan *sc, const struct cell *row, const char *text)
{
    sc->from = cell_i64(&row[0]) + 1;
}

static bool name_ok(const char *name)
{
    return name && iot_tm_name_valid(name);
}

int iot_tmsql_rollups(void *self, int64_t device_id, const char *name, int64_t width,
                      int64_t from, int64_t to, iot_tm_rollup_fn fn, void *ctx)
{
    if (!fn || !name_ok(name) || (width != IOT_TM_HOUR && width != IOT_TM_DAY))
        return IOT_EINVAL;
    struct scan sc = {.stmt = TMS_ROLLUP_SCAN, .ncols = 9, .bind = bind_rollups,
                      .emit = emit_rollup, .next = next_rollup, .left = INT64_MAX,
                      .id = device_id, .name = name, .width = width, .from = from, .to = to,
                      .fn.rollup = fn, .ctx = ctx};
    int rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}

/* ---- samples -------------------------------------------------------------------- */

static void bind_samples(sqlite3_stmt *st, const struct scan *sc, int64_t want)
{
    sqlite3_bind_int64(st, 1, sc->id);
    sqlite3_bind_text(st, 2, sc->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, max64(sc->from, sc->k_ts));
    sqlite3_bind_int64(st, 4, sc->to);
    sqlite3_bind_int64(st, 5, sc->k_ts);
    sqlite3_bind_int64(st, 6, sc->k_seq);
    sqlite3_bind_int64(st, 7, want);
}

/* Columns: ts, seq, value. ->> yields true/false as 1/0 integers; strings
 * (text) and absent measurements (NULL) are skipped. */
static int emit_sample(const struct scan *sc, const struct cell *row, const char *text)
{
    if (row[2].type != SQLITE_INTEGER && row[2].type != SQLITE_FLOAT)
        return 0;
    return sc->fn.sample(sc->ctx, cell_i64(&row[0]), cell_f64(&row[2]));
}

static void next_sample(struct scan *sc, const struct cell *row, const char *text)
{
    sc->k_ts = cell_i64(&row[0]);
    sc->k_seq = cell_i64(&row[1]);
}

int iot_tmsql_samples(void *self, int64_t device_id, const char *name, int64_t from, int64_t to,
                      iot_tm_sample_fn fn, void *ctx)
{
    if (!fn || !name_ok(name))
        return IOT_EINVAL;
    struct scan sc = {.stmt = TMS_SAMPLE_SCAN, .ncols = 3, .bind = bind_samples,
                      .emit = emit_sample, .next = next_sample, .left = INT64_MAX,
                      .id = device_id, .from = from, .to = to, .k_ts = INT64_MIN,
                      .k_seq = INT64_MIN, .fn.sample = fn, .ctx = ctx};
    iot_tmsql_json_path(name, strlen(name), sc.path);
    int rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}

/* ---- samples_typed, sample_edge (version 2) ------------------------------------ */

static struct iot_tm_sample sample_of(int64_t ts, const struct cell *v)
{
    struct iot_tm_sample out = {.ts = ts, .num = cell_f64(v), .is_int = v->type == SQLITE_INTEGER};
    out.i = out.is_int ? v->u.i : 0;
    return out;
}

/* Columns as emit_sample's. */
static int emit_typed_sample(const struct scan *sc, const struct cell *row, const char *text)
{
    if (row[2].type != SQLITE_INTEGER && row[2].type != SQLITE_FLOAT)
        return 0;
    struct iot_tm_sample smp = sample_of(cell_i64(&row[0]), &row[2]);
    return sc->fn.typed_sample(sc->ctx, &smp);
}

int iot_tmsql_samples_typed(void *self, int64_t device_id, const char *name, int64_t from,
                            int64_t to, iot_tm_typed_sample_fn fn, void *ctx)
{
    if (!fn || !name_ok(name))
        return IOT_EINVAL;
    struct scan sc = {.stmt = TMS_SAMPLE_SCAN, .ncols = 3, .bind = bind_samples,
                      .emit = emit_typed_sample, .next = next_sample, .left = INT64_MAX,
                      .id = device_id, .from = from, .to = to, .k_ts = INT64_MIN,
                      .k_seq = INT64_MIN, .fn.typed_sample = fn, .ctx = ctx};
    iot_tmsql_json_path(name, strlen(name), sc.path);
    int rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}

int iot_tmsql_sample_edge(void *self, int64_t device_id, const char *name, int64_t from,
                          int64_t to, bool last, struct iot_tm_sample *out)
{
    struct iot_tmsql *s = self;
    if (!out || !name_ok(name))
        return IOT_EINVAL;
    int rc = iot_tmsql_sync(s);
    if (rc)
        return rc;
    char path[IOT_TMSQL_PATH_MAX];
    iot_tmsql_json_path(name, strlen(name), path);
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    sqlite3_stmt *st;
    rc = iot_sqldb_stmt(c, last ? TMS_EDGE_LAST : TMS_EDGE_FIRST, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, from);
        sqlite3_bind_int64(st, 4, to);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            struct cell v = {.type = sqlite3_column_type(st, 1)};
            if (v.type == SQLITE_INTEGER)
                v.u.i = sqlite3_column_int64(st, 1);
            else
                v.u.d = sqlite3_column_double(st, 1);
            *out = sample_of(sqlite3_column_int64(st, 0), &v);
        } else {
            rc = src == SQLITE_DONE ? IOT_ENOTFOUND : iot_sqldb_map(src);
        }
        iot_sqldb_done(st);
    }
    iot_sqldb_put(s->db, c);
    return rc;
}

/* ---- export_scan (version 3) ----------------------------------------------------- */

static void bind_export(sqlite3_stmt *st, const struct scan *sc, int64_t want)
{
    sqlite3_bind_int64(st, 1, sc->k_dev);
    sqlite3_bind_int64(st, 2, sc->k_ts);
    sqlite3_bind_int64(st, 3, sc->k_seq);
    sqlite3_bind_int64(st, 4, want);
}

/* Columns: device_id, ts, seq, user_id, data, meta. */
static int emit_export(const struct scan *sc, const struct cell *row, const char *text)
{
    struct iot_tm_record r = {.device_id = cell_i64(&row[0]), .ts = cell_i64(&row[1]),
                              .seq = cell_i64(&row[2])};
    r.data_json = cell_text(&row[4], text, &r.data_len);
    if (!r.data_json)
        r.data_json = "";
    r.meta_json = cell_text(&row[5], text, &r.meta_len);
    return sc->fn.export(sc->ctx, &r, cell_i64(&row[3]));
}

static void next_export(struct scan *sc, const struct cell *row, const char *text)
{
    sc->k_dev = cell_i64(&row[0]);
    sc->k_ts = cell_i64(&row[1]);
    sc->k_seq = cell_i64(&row[2]);
}

/* A seek on the primary key per chunk: the (device_id, ts, seq) row value
 * bounds the key's range, so a copy of a big store reads each row once. */
int iot_tmsql_export_scan(void *self, int64_t after_device, int64_t after_ts, int64_t after_seq,
                          int64_t limit, iot_tm_export_fn fn, void *ctx)
{
    if (!fn || limit < 0)
        return IOT_EINVAL;
    struct scan sc = {.stmt = TMS_EXPORT_SCAN, .ncols = 6, .bind = bind_export,
                      .emit = emit_export, .next = next_export, .left = limit,
                      .k_dev = after_device, .k_ts = after_ts, .k_seq = after_seq,
                      .fn.export = fn, .ctx = ctx};
    int rc = iot_tmsql_sync(self);
    return rc ? rc : run_scan(self, &sc);
}
