/* telemetry_sqlite_pending.c — the commit path of the SQLite telemetry
 * store: write_batch appends a batch to a commit log (src/store/commit_log.h)
 * and stages it in memory; a flusher thread later moves the staged
 * messages into `messages` and applies their derived rows; open replays the
 * log after a crash.
 *
 * Why. With single-message HTTP ingest a commit holds 8-32 messages of as
 * many devices. Inserting them into `messages` dirties one leaf of the
 * messages B-tree and one of messages_by_user per device, ~70 pages a
 * commit, and those pages are what the WAL, the checkpoints and their
 * fsyncs pay for. Logged, the commit is one write(2) of contiguous bytes.
 * A flush then inserts thousands of messages at once, in (device_id, ts,
 * seq) order, so each device's leaf is dirtied once per flush instead of
 * once per commit, and applies the derived rows (latest, rollups, catalog,
 * devices) aggregated over the whole flush. And because the log is not the
 * database, a flush (a SQLite write transaction of ~10 ms) and a commit (an
 * append) run at the same time on two threads: the ingest writer never
 * waits for a flush, a checkpoint or their fsyncs. (Version 3 of the store
 * staged batches as rows of the table `pending`, in the same database: each
 * commit was a SQLite transaction and waited for every flush.)
 *
 * write_batch (iot_tmsql_stage_write), under stage_mu only:
 *  - appends one record with the batch (format below) to the commit log:
 *    the batch is durable once that returns
 *    (in the page cache, safe from a crash of the process; with `durable`,
 *    fdatasynced);
 *  - keeps the encoded batch in memory (the staged batch), which is all a
 *    flush needs: the typed points travel in it, nothing is re-parsed;
 *  - waits (up to STAGE_WAIT_MS, then IOT_EUNAVAILABLE) while more than
 *    STAGE_MAX_WORK messages + points are staged: the flusher is behind, and
 *    ingest must slow down rather than fill the memory.
 *
 * A flush, one transaction under mu (flush_tx):
 *  - decodes the oldest staged batches (all of them, or whole batches up to
 *    FLUSH_MAX_WORK messages + points when it is the flusher's);
 *  - INSERT OR IGNORE of their messages in (device_id, ts, seq) order, and
 *    among equal identities in staging order: a retry, or a repeat within a
 *    batch, inserts nothing (the first write wins);
 *  - for each message really inserted (sqlite3_changes() == 1), in batch
 *    order, its deltas join the aggregation map (telemetry_sqlite_write.c);
 *  - the map's upserts; log_state.flushed_upto = the last batch applied;
 *  - COMMIT, and only then the flushed batches leave memory and the log
 *    segments that hold nothing else are deleted. A failed flush rolls back
 *    and leaves everything staged.
 *
 * Flushes happen:
 *  - on the flusher thread FLUSH_AFTER_MS after the last flush when
 *    anything is staged, or as soon as FLUSH_WORK messages + points or
 *    FLUSH_BYTES are staged,
 *    bounded to FLUSH_MAX_WORK a transaction (or half the backlog when
 *    more is staged: bigger transactions cost less per message) so that
 *    reads and deletes, which wait for mu, wait a few ms while the flusher
 *    keeps up;
 *  - before every read (query_device, query_user, count_user, latest,
 *    rollups, samples, catalog, stats) when anything is staged: one atomic
 *    load when nothing is (iot_tmsql_sync), so a read sees every message
 *    whose write_batch returned;
 *  - inside the transaction of delete_range, delete_device, delete_user and
 *    purge, before they change anything (iot_tmsql_begin);
 *  - at open (what the log held) and at close.
 * If the process dies in between, the log survives: open replays its
 * records newer than log_state.flushed_upto into staged batches and flushes
 * them, which yields what the flushes would have. A record is applied at
 * most once: its flush and flushed_upto commit together.
 *
 * WAL checkpoints. SQLite's automatic checkpoint runs inside the COMMIT of
 * whichever write crosses wal_autocheckpoint pages. The store instead
 * installs a WAL hook on its write connections (which switches the
 * automatic checkpoint off there) that records the WAL's size, and the
 * flusher runs a PASSIVE checkpoint after its flush, outside any
 * transaction, when the WAL has grown past CKPT_PAGES.
 *
 * Batch blob format (little-endian): u32 count, then per message
 *   i64 device_id, user_id, ts, seq; u32 data_len; u32 meta_len
 *   (0xffffffff: no metadata); u32 n_points; data; meta; then per point
 *   u8 name_len, the name and a NUL, u8 type, and a value: an f64 (number),
 *   a u8 (boolean) or u32 length + bytes (string); type ENC_INTEGER (a
 *   number given as an integer) carries an i64, exact past 2^53. A log
 *   with ENC_INTEGER points cannot be replayed by a binary older than it.
 * One commit-log record per batch, its id the batch number.
 *
 * Versions 2 and 3 of the store left batches as rows of `pending` (version 2
 * named already inserted messages in `keys`, `msgs` NULL; version 3 carried
 * the blob). Open applies any such rows left by a crash as those versions
 * did, before anything of the log.
 *
 * One process per database file: a second process opening the file would
 * replay the log too. (iotflowd opens its telemetry file once; tools may
 * read it with plain SQLite, which is harmless — but they do not see staged
 * messages.) */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store/commit_log.h"
#include "store/sqlite/telemetry_sqlite_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/err.h"

/* Tuned with 100 devices x 3 measurements, batches of 16 (see the notes in
 * telemetry_sqlite_write.c): a flush costs ~1 us per message + point. */
enum {
    FLUSH_AFTER_MS = 100,
    FLUSH_WORK = 32768,     /* messages + points staged */
    FLUSH_MAX_WORK = 16384, /* per flusher transaction (whole batches, at least one) */
    FLUSH_BYTES = 32 << 20, /* bytes of staged blobs */
    STAGE_MAX_WORK = 1 << 20, /* staged messages + points before write_batch waits */
    STAGE_WAIT_MS = 2000,     /* ... for at most this long */
    CKPT_PAGES = 4096,
    KEEP_SCRATCH = 1 << 16, /* decode scratch kept between flushes */
};

#define NO_META UINT32_MAX
/* The point type of a number given as an integer (beside enum iot_tm_type). */
enum { ENC_INTEGER = 4 };

/* ---- little-endian encoding ----------------------------------------------- */

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return IOT_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p)
        return IOT_ENOMEM;
    b->p = p;
    b->cap = cap;
    return IOT_OK;
}

static void put_u32(struct buf *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

static void put_u64(struct buf *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

static void put_bytes(struct buf *b, const void *d, size_t n)
{
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | p[i];
    return u;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum { MSG_HEAD = 4 * 8 + 3 * 4 };

/* Upper bound of one message's encoding (validated: lengths are bounded). */
static size_t msg_bytes(const struct iot_tm_message *m)
{
    size_t n = MSG_HEAD + m->data_len + (m->meta_json ? m->meta_len : 0);
    for (size_t i = 0; i < m->n_points; i++)
        n += 2 + strlen(m->points[i].name) + 1 + 4 + 8 + m->points[i].value.str_len;
    return n;
}

static int encode_msg(struct buf *b, const struct iot_tm_message *m)
{
    int rc = buf_reserve(b, msg_bytes(m));
    if (rc)
        return rc;
    put_u64(b, (uint64_t)m->device_id);
    put_u64(b, (uint64_t)m->user_id);
    put_u64(b, (uint64_t)m->ts);
    put_u64(b, (uint64_t)m->seq);
    put_u32(b, (uint32_t)m->data_len);
    put_u32(b, m->meta_json ? (uint32_t)m->meta_len : NO_META);
    put_u32(b, (uint32_t)m->n_points);
    put_bytes(b, m->data_json, m->data_len);
    if (m->meta_json)
        put_bytes(b, m->meta_json, m->meta_len);
    for (size_t i = 0; i < m->n_points; i++) {
        const struct iot_tm_point *p = &m->points[i];
        size_t len = strlen(p->name);
        b->p[b->len++] = (unsigned char)len;
        put_bytes(b, p->name, len + 1);
        bool integer = p->value.type == IOT_TM_NUMBER && p->value.is_int;
        b->p[b->len++] = integer ? ENC_INTEGER : (unsigned char)p->value.type;
        switch (p->value.type) {
        case IOT_TM_NUMBER: {
            uint64_t u = (uint64_t)p->value.i;
            if (!integer)
                memcpy(&u, &p->value.num, sizeof u);
            put_u64(b, u);
            break;
        }
        case IOT_TM_BOOL: b->p[b->len++] = p->value.boolean ? 1 : 0; break;
        default:
            put_u32(b, (uint32_t)p->value.str_len);
            put_bytes(b, p->value.str, p->value.str_len);
            break;
        }
    }
    return IOT_OK;
}

/* Reads one message at *pos of blob[0..len) into *m, its points into
 * points[0..] (at most IOT_TM_POINTS_MAX). Pointers point into the blob. */
static int decode_msg(const unsigned char *blob, size_t len, size_t *pos,
                      struct iot_tm_message *m, struct iot_tm_point *points)
{
    size_t p = *pos;
#define NEED(n)                                                                                  \
    do {                                                                                         \
        if (len - p < (size_t)(n))                                                               \
            return IOT_EINTERNAL;                                                                \
    } while (0)
    NEED(MSG_HEAD);
    memset(m, 0, sizeof *m);
    m->device_id = (int64_t)get_u64(blob + p);
    m->user_id = (int64_t)get_u64(blob + p + 8);
    m->ts = (int64_t)get_u64(blob + p + 16);
    m->seq = (int64_t)get_u64(blob + p + 24);
    uint32_t data_len = get_u32(blob + p + 32), meta_len = get_u32(blob + p + 36);
    uint32_t n_points = get_u32(blob + p + 40);
    p += MSG_HEAD;
    if (data_len == 0 || data_len > IOT_TM_DATA_JSON_MAX || n_points > IOT_TM_POINTS_MAX ||
        (meta_len != NO_META && meta_len > IOT_TM_DATA_JSON_MAX))
        return IOT_EINTERNAL;
    NEED(data_len);
    m->data_json = (const char *)blob + p;
    m->data_len = data_len;
    p += data_len;
    if (meta_len != NO_META) {
        NEED(meta_len);
        m->meta_json = (const char *)blob + p;
        m->meta_len = meta_len;
        p += meta_len;
    }
    m->points = points;
    m->n_points = n_points;
    for (uint32_t i = 0; i < n_points; i++) {
        struct iot_tm_point *pt = &points[i];
        NEED(1);
        size_t nl = blob[p++];
        NEED(nl + 2);
        if (blob[p + nl] != '\0' || !iot_tmsql_name_ok((const char *)blob + p, nl))
            return IOT_EINTERNAL;
        pt->name = (const char *)blob + p;
        p += nl + 1;
        memset(&pt->value, 0, sizeof pt->value);
        pt->value.type = (enum iot_tm_type)blob[p++];
        if (pt->value.type == (enum iot_tm_type)ENC_INTEGER) {
            NEED(8);
            pt->value = (struct iot_tm_value){.type = IOT_TM_NUMBER, .is_int = true,
                                              .i = (int64_t)get_u64(blob + p)};
            pt->value.num = (double)pt->value.i;
            p += 8;
            continue;
        }
        switch (pt->value.type) {
        case IOT_TM_NUMBER: {
            NEED(8);
            uint64_t u = get_u64(blob + p);
            memcpy(&pt->value.num, &u, sizeof u);
            p += 8;
            break;
        }
        case IOT_TM_BOOL:
            NEED(1);
            pt->value.boolean = blob[p++] != 0;
            break;
        case IOT_TM_STRING: {
            NEED(4);
            uint32_t sl = get_u32(blob + p);
            p += 4;
            if (sl > IOT_TM_STRING_MAX)
                return IOT_EINTERNAL;
            NEED(sl);
            pt->value.str = (const char *)blob + p;
            pt->value.str_len = sl;
            p += sl;
            break;
        }
        default: return IOT_EINTERNAL;
        }
    }
#undef NEED
    *pos = p;
    return IOT_OK;
}

/* ---- staged batches ------------------------------------------------------------ */

struct staged {
    struct staged *next;
    int64_t batch;
    uint64_t segment; /* of the commit log, holding its record (0: none) */
    unsigned char *blob; /* owned */
    size_t len;
    uint32_t n_msgs, n_points;
};


/* Under stage_mu: the list, its counters, the set and the blob. Under mu:
 * the flush scratch and `flushing`. A flush reads the batches it took
 * without stage_mu: write_batch only ever appends after them. */
struct iot_tmsql_stage {
    struct staged *head, *tail;
    size_t n_msgs, n_work, n_bytes;
    /* write_batch's blob under construction */
    struct buf blob;
    /* flush scratch */
    struct iot_tm_message *msgs;
    struct iot_tm_point *points;
    int64_t *batch_of;
    uint32_t *order;
    unsigned char *inserted;
    size_t msgs_cap, points_cap;
    /* what the open write transaction flushed */
    size_t flushing; /* batches */
};

static void staged_free_list(struct staged *b)
{
    while (b) {
        struct staged *next = b->next;
        free(b->blob);
        free(b);
        b = next;
    }
}

void iot_tmsql_stage_free(struct iot_tmsql_stage *g)
{
    if (!g)
        return;
    staged_free_list(g->head);
    free(g->blob.p);
    free(g->msgs);
    free(g->points);
    free(g->batch_of);
    free(g->order);
    free(g->inserted);
    free(g);
}

static void stage_append(struct iot_tmsql_stage *g, struct staged *b)
{
    if (g->tail)
        g->tail->next = b;
    else
        g->head = b;
    g->tail = b;
    g->n_msgs += b->n_msgs;
    g->n_work += b->n_msgs + b->n_points;
    g->n_bytes += b->len;
}

/* A staged batch holding a copy of blob[0..len). */
static struct staged *staged_new(int64_t batch, const unsigned char *blob, size_t len,
                                 uint32_t n_msgs, uint32_t n_points)
{
    struct staged *b = calloc(1, sizeof *b);
    if (b)
        b->blob = malloc(len);
    if (!b || !b->blob) {
        free(b);
        return NULL;
    }
    memcpy(b->blob, blob, len);
    *b = (struct staged){.batch = batch, .blob = b->blob, .len = len, .n_msgs = n_msgs,
                         .n_points = n_points};
    return b;
}

/* ---- WAL size and checkpoints ---------------------------------------------------- */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    atomic_store(&((struct iot_tmsql *)arg)->wal_pages, pages);
    return SQLITE_OK;
}

/* Every write transaction's connection reports its WAL size to the store
 * (and no longer checkpoints by itself). */
static void hook(struct iot_tmsql *s, struct iot_sqldb_conn *c)
{
    sqlite3_wal_hook(iot_sqldb_handle(c), wal_hook, s);
}

/* Under s->mu, outside a transaction. A failed or partial checkpoint (a
 * reader holds an old snapshot) is retried after a later write. */
static void checkpoint(struct iot_tmsql *s)
{
    if (atomic_load(&s->wal_pages) < CKPT_PAGES)
        return;
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(iot_sqldb_handle(c), NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    iot_sqldb_put(s->db, c);
    if (rc == SQLITE_OK && log >= 0 && done == log)
        atomic_store(&s->wal_pages, 0); /* the next commit restarts the WAL */
}

/* ---- version 2 pending rows (keys of inserted messages) --------------------------- */

/* A value as write_batch's callers give it: number, boolean, or a string of
 * at most IOT_TM_STRING_MAX bytes. Anything else is no point. */
static bool read_value(json_t *jv, struct iot_tm_value *v)
{
    if (json_is_integer(jv))
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER,
                                   .num = (double)json_integer_value(jv), .is_int = true,
                                   .i = json_integer_value(jv)};
    else if (json_is_real(jv))
        *v = (struct iot_tm_value){.type = IOT_TM_NUMBER, .num = json_real_value(jv)};
    else if (json_is_boolean(jv))
        *v = (struct iot_tm_value){.type = IOT_TM_BOOL, .boolean = json_is_true(jv)};
    else if (json_is_string(jv) && json_string_length(jv) <= IOT_TM_STRING_MAX)
        *v = (struct iot_tm_value){.type = IOT_TM_STRING, .str = json_string_value(jv),
                                   .str_len = json_string_length(jv)};
    else
        return false;
    return true;
}

/* Adds the message that `get` (TMS_MSG_GET, on its row) holds. */
static int add_stored(struct iot_tmsql_agg *a, sqlite3_stmt *get, int64_t dev, int64_t ts,
                      int64_t seq, int64_t batch)
{
    struct iot_tm_point points[IOT_TM_POINTS_MAX];
    struct iot_tm_message m = {.device_id = dev, .user_id = sqlite3_column_int64(get, 0),
                               .ts = ts, .seq = seq, .points = points};
    const char *data = (const char *)sqlite3_column_text(get, 1);
    size_t data_len = (size_t)sqlite3_column_bytes(get, 1);
    if (sqlite3_column_type(get, 2) != SQLITE_NULL) {
        m.meta_json = (const char *)sqlite3_column_text(get, 2);
        m.meta_len = (size_t)sqlite3_column_bytes(get, 2);
        if (!m.meta_json)
            return IOT_ENOMEM;
    }
    if (!data)
        return IOT_ENOMEM;
    json_error_t err;
    json_t *obj = json_loadb(data, data_len, JSON_ALLOW_NUL, &err);
    if (!obj && json_error_code(&err) == json_error_out_of_memory)
        return IOT_ENOMEM;
    const char *name;
    json_t *jv;
    if (json_is_object(obj)) {
        json_object_foreach(obj, name, jv) {
            if (m.n_points == IOT_TM_POINTS_MAX)
                break;
            struct iot_tm_point *p = &points[m.n_points];
            if (iot_tmsql_name_ok(name, strlen(name)) && read_value(jv, &p->value)) {
                p->name = name;
                m.n_points++;
            }
        }
    }
    int rc = iot_tmsql_agg_add(a, &m, batch);
    json_decref(obj);
    return rc;
}

/* Adds the messages one version 2 row names (24 bytes each). */
static int add_legacy_row(struct iot_tmsql_agg *a, sqlite3_stmt *get, int64_t batch,
                          const unsigned char *keys, size_t n)
{
    int rc = IOT_OK;
    for (size_t i = 0; i < n && rc == IOT_OK; i++) {
        const unsigned char *k = keys + i * 24;
        int64_t dev = (int64_t)get_u64(k), ts = (int64_t)get_u64(k + 8),
                seq = (int64_t)get_u64(k + 16);
        sqlite3_bind_int64(get, 1, dev);
        sqlite3_bind_int64(get, 2, ts);
        sqlite3_bind_int64(get, 3, seq);
        int src = sqlite3_step(get);
        if (src == SQLITE_ROW)
            rc = add_stored(a, get, dev, ts, seq, batch);
        else if (src != SQLITE_DONE) /* DONE: deleted since, skipped */
            rc = iot_sqldb_map(src);
        iot_sqldb_done(get);
    }
    return rc;
}

/* Adds every version 2 row up to s->legacy_upto, in batch order. */
static int add_legacy(struct iot_tmsql *s, struct iot_sqldb_conn *c)
{
    sqlite3_stmt *scan, *get;
    int rc = iot_sqldb_stmt(c, TMS_PENDING_SCAN, &scan);
    if (rc == IOT_OK)
        rc = iot_sqldb_stmt(c, TMS_MSG_GET, &get);
    if (rc)
        return rc;
    sqlite3_bind_int64(scan, 1, s->legacy_upto);
    int src;
    while (rc == IOT_OK && (src = sqlite3_step(scan)) == SQLITE_ROW) {
        const unsigned char *keys = sqlite3_column_blob(scan, 1);
        size_t bytes = (size_t)sqlite3_column_bytes(scan, 1);
        if (!keys && bytes) {
            rc = IOT_ENOMEM;
            break;
        }
        rc = add_legacy_row(s->agg, get, sqlite3_column_int64(scan, 0), keys, bytes / 24);
    }
    if (rc == IOT_OK && src != SQLITE_DONE)
        rc = iot_sqldb_map(src);
    iot_sqldb_done(scan);
    return rc;
}

/* ---- flushing ------------------------------------------------------------------------ */

static int scratch_reserve(struct iot_tmsql_stage *g, size_t msgs, size_t points)
{
    if (msgs > g->msgs_cap) {
        free(g->msgs);
        free(g->batch_of);
        free(g->order);
        free(g->inserted);
        g->msgs = malloc(msgs * sizeof *g->msgs);
        g->batch_of = malloc(msgs * sizeof *g->batch_of);
        g->order = malloc(msgs * sizeof *g->order);
        g->inserted = malloc(msgs);
        g->msgs_cap = g->msgs && g->batch_of && g->order && g->inserted ? msgs : 0;
        if (!g->msgs_cap)
            return IOT_ENOMEM;
    }
    if (points > g->points_cap) {
        free(g->points);
        g->points = malloc(points * sizeof *g->points);
        g->points_cap = g->points ? points : 0;
        if (!g->points_cap)
            return IOT_ENOMEM;
    }
    return IOT_OK;
}

static void scratch_trim(struct iot_tmsql_stage *g)
{
    if (g->msgs_cap > KEEP_SCRATCH) {
        free(g->msgs);
        free(g->batch_of);
        free(g->order);
        free(g->inserted);
        g->msgs = NULL;
        g->batch_of = NULL;
        g->order = NULL;
        g->inserted = NULL;
        g->msgs_cap = 0;
    }
    if (g->points_cap > 4 * KEEP_SCRATCH) {
        free(g->points);
        g->points = NULL;
        g->points_cap = 0;
    }
}

/* Decodes nb staged batches from `first` on into the scratch arrays. */
static int decode_batches(struct iot_tmsql_stage *g, const struct staged *first, size_t nb,
                          size_t *n_out)
{
    size_t n = 0, np = 0;
    const struct staged *b = first;
    for (size_t i = 0; i < nb; i++, b = i < nb ? b->next : NULL) {
        if (b->len < 4 || get_u32(b->blob) != b->n_msgs)
            return IOT_EINTERNAL;
        size_t pos = 4;
        for (uint32_t k = 0; k < b->n_msgs; k++, n++) {
            if (np + IOT_TM_POINTS_MAX > g->points_cap)
                return IOT_EINTERNAL; /* more points than the batches said */
            int rc = decode_msg(b->blob, b->len, &pos, &g->msgs[n], g->points + np);
            if (rc)
                return rc;
            np += g->msgs[n].n_points;
            g->batch_of[n] = b->batch;
            g->order[n] = (uint32_t)n;
        }
    }
    *n_out = n;
    return IOT_OK;
}

static int cmp_ident(const void *x, const void *y, void *arg)
{
    const struct iot_tm_message *msgs = arg;
    const struct iot_tm_message *a = &msgs[*(const uint32_t *)x];
    const struct iot_tm_message *b = &msgs[*(const uint32_t *)y];
    if (a->device_id != b->device_id)
        return a->device_id < b->device_id ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1; /* first staged first */
}

static int insert_msgs(struct iot_sqldb_conn *c, struct iot_tmsql_stage *g, size_t n)
{
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_MSG_INSERT, &st);
    sqlite3 *db = iot_sqldb_handle(c);
    for (size_t k = 0; k < n && rc == IOT_OK; k++) {
        size_t i = g->order[k];
        const struct iot_tm_message *m = &g->msgs[i];
        sqlite3_bind_int64(st, 1, m->device_id);
        sqlite3_bind_int64(st, 2, m->ts);
        sqlite3_bind_int64(st, 3, m->seq);
        sqlite3_bind_int64(st, 4, m->user_id);
        sqlite3_bind_text(st, 5, m->data_json, (int)m->data_len, SQLITE_STATIC);
        if (m->meta_json)
            sqlite3_bind_text(st, 6, m->meta_json, (int)m->meta_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        rc = iot_sqldb_step_done(st);
        g->inserted[i] = rc == IOT_OK && sqlite3_changes(db) == 1;
    }
    return rc;
}

/* The batches a flush takes: the oldest ones, all or whole batches up to
 * FLUSH_MAX_WORK messages + points. Under stage_mu. */
struct take {
    const struct staged *first;
    size_t nb, nm, np;
    int64_t upto; /* the last one's batch */
    bool rest;    /* more batches are staged after them */
};

static struct take take_batches(struct iot_tmsql *s, bool all)
{
    pthread_mutex_lock(&s->stage_mu);
    struct take t = {.first = s->stage->head, .upto = s->last_batch};
    /* behind, the flusher takes more at once: a transaction that inserts
     * more messages per dirtied page costs less per message */
    size_t bound = s->stage->n_work / 2 > FLUSH_MAX_WORK ? s->stage->n_work / 2 : FLUSH_MAX_WORK;
    for (const struct staged *b = t.first; b; b = b->next) {
        if (!all && t.nb && t.nm + t.np >= bound) {
            t.rest = true;
            break;
        }
        t.nb++;
        t.nm += b->n_msgs;
        t.np += b->n_points;
        t.upto = b->batch;
    }
    pthread_mutex_unlock(&s->stage_mu);
    return t;
}

/* Records the newest batch applied, and drops `pending` rows up to it. */
static int mark_applied(struct iot_tmsql *s, struct iot_sqldb_conn *c, int64_t upto)
{
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_LOG_STATE_SET, &st);
    if (rc == IOT_OK) {
        sqlite3_bind_int64(st, 1, upto);
        rc = iot_sqldb_step_done(st);
    }
    if (rc == IOT_OK && s->pending_rows)
        rc = iot_sqldb_stmt(c, TMS_PENDING_DEL, &st);
    if (rc == IOT_OK && s->pending_rows) {
        sqlite3_bind_int64(st, 1, upto);
        rc = iot_sqldb_step_done(st);
    }
    return rc;
}

/* In the open write transaction (under mu): moves the oldest staged
 * batches and any version 2 rows into the tables. Memory changes only at
 * commit (flush_done). */
static int flush_tx(struct iot_tmsql *s, struct iot_sqldb_conn *c, bool all)
{
    struct iot_tmsql_stage *g = s->stage;
    if (!s->agg && !(s->agg = iot_tmsql_agg_new()))
        return IOT_ENOMEM;
    iot_tmsql_agg_reset(s->agg);
    int rc = s->legacy_upto ? add_legacy(s, c) : IOT_OK;
    struct take t = take_batches(s, all);
    if (s->legacy_upto > t.upto)
        t.upto = s->legacy_upto;
    size_t n = 0;
    if (rc == IOT_OK && t.nb)
        rc = scratch_reserve(g, t.nm, t.np + IOT_TM_POINTS_MAX);
    if (rc == IOT_OK && t.nb)
        rc = decode_batches(g, t.first, t.nb, &n);
    if (rc == IOT_OK && n) {
        qsort_r(g->order, n, sizeof *g->order, cmp_ident, g->msgs);
        rc = insert_msgs(c, g, n);
    }
    /* deltas in staging order: the owner of a device and a series' unit
     * follow the last write, as if the batches had been applied one by one */
    for (size_t i = 0; i < n && rc == IOT_OK; i++)
        if (g->inserted[i])
            rc = iot_tmsql_agg_add(s->agg, &g->msgs[i], g->batch_of[i]);
    if (rc == IOT_OK)
        rc = iot_tmsql_agg_apply(c, s->agg);
    if (rc == IOT_OK && (t.nb || s->legacy_upto))
        rc = mark_applied(s, c, t.upto);
    iot_tmsql_agg_reset(s->agg);
    g->flushing = rc == IOT_OK ? t.nb : 0;
    s->flushed = rc == IOT_OK;
    s->flush_again = rc == IOT_OK && t.rest;
    return rc;
}

/* After the flush's COMMIT (under mu): its batches leave memory, and the
 * log segments holding only applied records are deleted. */
static void flush_done(struct iot_tmsql *s)
{
    struct iot_tmsql_stage *g = s->stage;
    s->legacy_upto = 0;
    s->pending_rows = false;
    pthread_mutex_lock(&s->stage_mu);
    struct staged *done = NULL;
    if (g->flushing) {
        struct staged *b = g->head, *last = NULL;
        done = g->head;
        for (size_t i = 0; i < g->flushing; i++, b = b->next) {
            g->n_msgs -= b->n_msgs;
            g->n_work -= b->n_msgs + b->n_points;
            g->n_bytes -= b->len;
            last = b;
        }
        last->next = NULL;
        g->head = b;
        if (!g->head)
            g->tail = NULL;
        g->flushing = 0;
    }
    if (s->log) { /* a batch from the old pending table (segment 0) keeps them all */
        uint64_t keep = !g->head ? iot_clog_current(s->log) : g->head->segment ? g->head->segment : 1;
        iot_clog_release_before(s->log, keep);
    }
    s->last_flush_ms = iot_now_ms();
    atomic_store(&s->dirty, g->head ? 1 : 0);
    pthread_cond_broadcast(&s->stage_cv); /* room for a waiting write_batch */
    pthread_mutex_unlock(&s->stage_mu);
    staged_free_list(done);
    scratch_trim(g);
}

/* The unlocked halves of iot_tmsql_begin / _end. */
static int tx_begin(struct iot_tmsql *s, struct iot_sqldb_conn **c)
{
    int rc = iot_sqldb_write_begin(s->db, c);
    if (rc)
        return rc;
    hook(s, *c);
    s->flushed = false;
    if (atomic_load(&s->dirty))
        rc = flush_tx(s, *c, true);
    if (rc)
        iot_sqldb_write_end(s->db, *c, rc);
    return rc;
}

static int tx_end(struct iot_tmsql *s, struct iot_sqldb_conn *c, int rc)
{
    rc = iot_sqldb_write_end(s->db, c, rc);
    if (s->flushed && rc == IOT_OK)
        flush_done(s);
    else if (s->stage)
        s->stage->flushing = 0;
    s->flushed = false;
    return rc;
}

int iot_tmsql_begin(struct iot_tmsql *s, struct iot_sqldb_conn **c)
{
    pthread_mutex_lock(&s->mu);
    int rc = tx_begin(s, c);
    if (rc)
        pthread_mutex_unlock(&s->mu);
    return rc;
}

int iot_tmsql_end(struct iot_tmsql *s, struct iot_sqldb_conn *c, int rc)
{
    rc = tx_end(s, c, rc);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- the flusher ------------------------------------------------------------ */

/* One flush transaction of everything (all) or of the oldest batches; under
 * mu. */
static int flush_once(struct iot_tmsql *s, bool all)
{
    struct iot_sqldb_conn *c;
    int rc = iot_sqldb_write_begin(s->db, &c);
    if (rc)
        return rc;
    hook(s, c);
    s->flushed = false;
    rc = flush_tx(s, c, all);
    return tx_end(s, c, rc);
}

int iot_tmsql_sync(struct iot_tmsql *s)
{
    if (!atomic_load(&s->dirty))
        return IOT_OK;
    pthread_mutex_lock(&s->mu);
    int rc = atomic_load(&s->dirty) ? flush_once(s, true) : IOT_OK;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Is a flush due (age, size)? Under stage_mu. */
static bool due(struct iot_tmsql *s)
{
    const struct iot_tmsql_stage *g = s->stage;
    if (!g->head)
        return false;
    int64_t now = iot_now_ms();
    if (now < s->last_flush_ms)
        s->last_flush_ms = now; /* the clock was set back */
    return now - s->last_flush_ms >= FLUSH_AFTER_MS || g->n_work >= FLUSH_WORK ||
           g->n_bytes >= FLUSH_BYTES;
}

/* Waits on stage_cv for at most ms (monotonic clock). Under stage_mu. */
static int wait_ms(struct iot_tmsql *s, int64_t ms)
{
    struct timespec until = iot_deadline_ms(CLOCK_MONOTONIC, ms);
    return pthread_cond_timedwait(&s->stage_cv, &s->stage_mu, &until);
}

/* Flushes whenever one is due, and checkpoints after; a bounded flush that
 * left batches behind goes on at once; a failed flush is retried
 * FLUSH_AFTER_MS later (everything stays staged meanwhile). */
static void *flusher_main(void *arg)
{
    struct iot_tmsql *s = arg;
    bool failed = false, again = false;
    pthread_setname_np(pthread_self(), "tm-flusher");
    pthread_mutex_lock(&s->stage_mu);
    while (!s->stopping) {
        if (failed || (!again && !due(s))) {
            (void)wait_ms(s, FLUSH_AFTER_MS);
            failed = false;
            continue;
        }
        pthread_mutex_unlock(&s->stage_mu);
        pthread_mutex_lock(&s->mu);
        int rc = flush_once(s, false);
        again = rc == IOT_OK && s->flush_again;
        if (rc == IOT_OK)
            checkpoint(s);
        pthread_mutex_unlock(&s->mu);
        if (rc) {
            IOT_WARN("telemetry: a flush failed (%s); the staged batches stay in the commit "
                     "log and are retried", iot_strerror(rc));
            failed = true;
        }
        pthread_mutex_lock(&s->stage_mu);
    }
    pthread_mutex_unlock(&s->stage_mu);
    return NULL;
}

/* ---- write_batch ------------------------------------------------------------------ */

/* Encodes the batch into g->blob. Under stage_mu. */
static int encode_batch(struct iot_tmsql_stage *g, const struct iot_tm_message *msgs, size_t n,
                        uint32_t *n_msgs, uint32_t *n_points)
{
    g->blob.len = 0;
    int rc = buf_reserve(&g->blob, 4);
    if (rc)
        return rc;
    g->blob.len = 4; /* the count, written last */
    for (size_t i = 0; i < n && rc == IOT_OK; i++) {
        const struct iot_tm_message *m = &msgs[i];
        rc = encode_msg(&g->blob, m);
        if (rc == IOT_OK) {
            (*n_msgs)++;
            *n_points += (uint32_t)m->n_points;
        }
    }
    for (int i = 0; i < 4; i++)
        g->blob.p[i] = (unsigned char)(*n_msgs >> (8 * i));
    return rc;
}

/* Waits while the flusher is too far behind. Under stage_mu. */
static int wait_for_room(struct iot_tmsql *s)
{
    int64_t deadline = iot_mono_us() + STAGE_WAIT_MS * 1000;
    while (s->stage->n_work >= STAGE_MAX_WORK) {
        if (s->stopping || iot_mono_us() >= deadline)
            return IOT_EUNAVAILABLE;
        pthread_cond_broadcast(&s->stage_cv); /* the flusher: a flush is due */
        (void)wait_ms(s, 50);
    }
    return IOT_OK;
}

/* Logs and stages one batch. Under stage_mu. */
static int stage_locked(struct iot_tmsql *s, const struct iot_tm_message *msgs, size_t n)
{
    struct iot_tmsql_stage *g = s->stage;
    int64_t batch = s->last_batch + 1;
    uint32_t n_msgs = 0, n_points = 0;
    int rc = wait_for_room(s);
    if (rc == IOT_OK)
        rc = encode_batch(g, msgs, n, &n_msgs, &n_points);
    if (rc || n_msgs == 0)
        return rc;
    /* allocated before the append: once logged, the batch must be staged */
    struct staged *b = staged_new(batch, g->blob.p, g->blob.len, n_msgs, n_points);
    if (!b)
        return IOT_ENOMEM;
    if (s->log && (rc = iot_clog_append(s->log, (uint64_t)batch, g->blob.p, g->blob.len,
                                        &b->segment)) != IOT_OK) {
        staged_free_list(b);
        return rc;
    }
    stage_append(g, b);
    s->last_batch = batch;
    atomic_store(&s->dirty, 1);
    if (g->n_work >= FLUSH_WORK || g->n_bytes >= FLUSH_BYTES)
        pthread_cond_broadcast(&s->stage_cv);
    return IOT_OK;
}

int iot_tmsql_stage_write(struct iot_tmsql *s, const struct iot_tm_message *msgs, size_t n)
{
    pthread_mutex_lock(&s->stage_mu);
    int rc = stage_locked(s, msgs, n);
    if (s->stage->blob.cap > (4u << 20)) {
        free(s->stage->blob.p);
        s->stage->blob = (struct buf){0};
    }
    pthread_mutex_unlock(&s->stage_mu);
    return rc;
}

/* ---- open ----------------------------------------------------------------------------- */

/* Counts a blob's messages and points, checking that it decodes whole. */
static int check_blob(const unsigned char *blob, size_t len, uint32_t *n_msgs,
                      uint32_t *n_points)
{
    if (len < 4)
        return IOT_EINTERNAL;
    uint32_t n = get_u32(blob), np = 0;
    size_t pos = 4;
    struct iot_tm_message m;
    struct iot_tm_point points[IOT_TM_POINTS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        int rc = decode_msg(blob, len, &pos, &m, points);
        if (rc)
            return rc;
        np += (uint32_t)m.n_points;
    }
    if (pos != len)
        return IOT_EINTERNAL;
    *n_msgs = n;
    *n_points = np;
    return IOT_OK;
}

/* Stages a batch found at open (a `pending` row or a log record). */
static int restage(struct iot_tmsql *s, int64_t batch, uint64_t segment,
                   const unsigned char *blob, size_t len)
{
    struct iot_tmsql_stage *g = s->stage;
    uint32_t nm = 0, np = 0;
    int rc = check_blob(blob, len, &nm, &np);
    struct staged *b = rc == IOT_OK ? staged_new(batch, blob, len, nm, np) : NULL;
    if (rc == IOT_OK && !b)
        rc = IOT_ENOMEM;
    if (rc)
        return rc;
    b->segment = segment;
    stage_append(g, b);
    if (batch > s->last_batch)
        s->last_batch = batch;
    return rc;
}

/* Rows of the `pending` table left by versions 2 and 3. */
static int load_pending_rows(struct iot_tmsql *s, struct iot_sqldb_conn *c)
{
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_PENDING_ALL, &st);
    int src = SQLITE_DONE;
    while (rc == IOT_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t batch = sqlite3_column_int64(st, 0);
        s->pending_rows = true;
        if (batch > s->last_batch)
            s->last_batch = batch;
        if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
            s->legacy_upto = batch; /* version 2 rows come first */
            continue;
        }
        const unsigned char *blob = sqlite3_column_blob(st, 1);
        rc = blob ? restage(s, batch, 0, blob, (size_t)sqlite3_column_bytes(st, 1)) : IOT_ENOMEM;
    }
    if (rc == IOT_OK && src != SQLITE_DONE)
        rc = iot_sqldb_map(src);
    iot_sqldb_done(st);
    return rc;
}

struct replay {
    struct iot_tmsql *s;
    int64_t applied; /* log_state.flushed_upto */
};

static int replay_record(void *ctx, uint64_t segment, uint64_t id, const unsigned char *data,
                         size_t len)
{
    struct replay *r = ctx;
    int64_t batch = (int64_t)id;
    if (batch <= r->applied)
        return IOT_OK; /* flushed before the crash */
    int rc = restage(r->s, batch, segment, data, len);
    if (rc == IOT_EINTERNAL) /* intact checksum, undecodable: a bug, not a torn write */
        IOT_ERROR("telemetry commit log: batch %lld does not decode", (long long)batch);
    return rc;
}

/* The commit log beside the database file: "<file>-log-NNNNNNNNNN". */
static int load_log(struct iot_tmsql *s, struct iot_sqldb_conn *c)
{
    const char *path = iot_sqldb_path(s->db);
    if (!path)
        return IOT_OK; /* a memory database keeps nothing */
    int64_t applied = 0;
    sqlite3_stmt *st;
    int rc = iot_sqldb_stmt(c, TMS_LOG_STATE_GET, &st);
    if (rc == IOT_OK)
        rc = iot_tmsql_step_ints(st, &applied, 1);
    if (rc)
        return rc;
    if (applied > s->last_batch)
        s->last_batch = applied;
    char base[4200];
    snprintf(base, sizeof base, "%s-log-", path);
    rc = iot_clog_open(base, s->durable, 0, &s->log);
    struct replay r = {s, applied};
    return rc ? rc : iot_clog_replay(s->log, replay_record, &r);
}

int iot_tmsql_pending_open(struct iot_tmsql *s)
{
    if (!(s->stage = calloc(1, sizeof *s->stage)))
        return IOT_ENOMEM;
    struct iot_sqldb_conn *c = iot_sqldb_get(s->db);
    int rc = load_pending_rows(s, c);
    if (rc == IOT_OK)
        rc = load_log(s, c);
    iot_sqldb_put(s->db, c);
    if (rc)
        return rc;
    s->last_flush_ms = iot_now_ms();
    if (s->stage->head || s->legacy_upto)
        atomic_store(&s->dirty, 1);
    pthread_mutex_lock(&s->mu);
    rc = atomic_load(&s->dirty) ? flush_once(s, true) : IOT_OK;
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    if (s->log) /* segments whose records were all applied before */
        iot_clog_release_before(s->log, iot_clog_current(s->log));
    if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0)
        return IOT_ENOMEM;
    s->flusher_started = true;
    return IOT_OK;
}

void iot_tmsql_pending_close(struct iot_tmsql *s)
{
    if (s->flusher_started) {
        pthread_mutex_lock(&s->stage_mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->stage_cv);
        pthread_mutex_unlock(&s->stage_mu);
        pthread_join(s->flusher, NULL);
        s->flusher_started = false;
    }
    pthread_mutex_lock(&s->mu);
    int rc = atomic_load(&s->dirty) ? flush_once(s, true) : IOT_OK;
    pthread_mutex_unlock(&s->mu);
    if (rc)
        IOT_ERROR("telemetry: the last flush failed (%s); the commit log is kept and replayed "
                  "at the next open", iot_strerror(rc));
    else if (s->log) /* everything is applied: the log is not needed any more */
        iot_clog_release_before(s->log, iot_clog_current(s->log) + 1);
    iot_clog_close(s->log);
    s->log = NULL;
}
