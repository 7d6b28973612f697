/* cache_redis_batch.c — write_batch for Redis: the ingest path's fan-out
 * (latest-value hashes, presence, publishes, deletes) pipelined on one
 * pooled connection: every command is queued, then every reply read, so a
 * batch costs one round trip (one per BATCH_PIPELINE_MAX writes).
 *
 * Commands reach the server in order. The one exception: if the server has
 * lost the hash script (SCRIPT FLUSH since the connection loaded it), those
 * hash writes come back NOSCRIPT and are redone with EVAL after the rest of
 * their slice. */
#include <stdint.h>
#include <stdlib.h>

#include "store/redis/redis_int.h"
#include "util/err.h"

/* Writes per round trip: bounds the output buffer and the reply backlog a
 * batch can hold (a few MB at most), at one round trip per slice. */
#define BATCH_PIPELINE_MAX 1024

/* The first error in write order (not in the order errors are seen). */
struct batch_result {
    size_t first_idx;
    int first_rc;
};

static void note(struct batch_result *res, size_t idx, int rc)
{
    if (rc != IOT_OK && idx < res->first_idx) {
        res->first_idx = idx;
        res->first_rc = rc;
    }
}

static int prepare(const struct iot_redis_cache *c, const struct iot_cache_write *w,
                   struct iot_redis_key *k, char *member, size_t member_size,
                   struct iot_redis_argv *a)
{
    switch (w->kind) {
    case IOT_CACHE_W_HASH_SET:
        return iot_redis_prep_hash_set(c, w->key, w->fields, w->n_fields, w->ttl_ms,
                                       w->max_fields, k, a);
    case IOT_CACHE_W_PRESENCE_TOUCH:
        iot_redis_prep_presence_touch(c, w->device_id, w->seen_ms, k, member, member_size, a);
        return IOT_OK;
    case IOT_CACHE_W_PUBLISH:
        return iot_redis_prep_publish(c, w->key, w->msg, w->len, k, a);
    case IOT_CACHE_W_DEL:
        return iot_redis_prep_del(c, w->key, k, a);
    }
    return IOT_EINVAL;
}

/* Queues the slice's valid writes; sent[] gets their indexes. */
static size_t queue_slice(struct iot_redis_cache *c, struct iot_redis_conn *conn,
                          const struct iot_cache_write *w, size_t base, size_t n,
                          size_t *sent, struct batch_result *res)
{
    size_t n_sent = 0;
    for (size_t i = 0; i < n; i++) {
        struct iot_redis_key k;
        char member[32];
        struct iot_redis_argv a;
        iot_redis_argv_init(&a);
        int rc = prepare(c, &w[i], &k, member, sizeof member, &a);
        if (rc == IOT_OK)
            rc = iot_redis_append(conn, &a); /* copies the arguments */
        iot_redis_argv_free(&a);
        if (rc == IOT_OK)
            sent[n_sent++] = i;
        else
            note(res, base + i, rc);
    }
    return n_sent;
}

/* Reads one reply per queued write; NOSCRIPT ones go to redo[]. */
static size_t read_slice(struct iot_redis_conn *conn, size_t base, const size_t *sent,
                         size_t n_sent, size_t *redo, struct batch_result *res)
{
    size_t n_redo = 0;
    for (size_t j = 0; j < n_sent; j++) {
        redisReply *r;
        int rc = iot_redis_read(conn, &r); /* after an I/O error, fails at once */
        if (rc == IOT_OK && iot_redis_is_noscript(r))
            redo[n_redo++] = sent[j];
        else if (rc == IOT_OK)
            rc = iot_redis_reply_rc(r);
        note(res, base + sent[j], rc);
        freeReplyObject(r);
    }
    return n_redo;
}

static void run_slice(struct iot_redis_cache *c, const struct iot_cache_write *w, size_t base,
                      size_t n, struct batch_result *res)
{
    size_t sent[BATCH_PIPELINE_MAX], redo[BATCH_PIPELINE_MAX];
    struct iot_redis_conn *conn;
    int rc = iot_redis_acquire(c->pool, &conn);
    if (rc != IOT_OK) {
        note(res, base, rc);
        return;
    }
    size_t n_sent = queue_slice(c, conn, w, base, n, sent, res);
    size_t n_redo = read_slice(conn, base, sent, n_sent, redo, res);
    iot_redis_release(conn);
    for (size_t j = 0; j < n_redo; j++) {
        const struct iot_cache_write *hw = &w[redo[j]];
        note(res, base + redo[j],
             iot_redis_hash_set(c, hw->key, hw->fields, hw->n_fields, hw->ttl_ms));
    }
}

int iot_redis_write_batch(void *self, const struct iot_cache_write *w, size_t n)
{
    struct iot_redis_cache *c = self;
    if (!w && n > 0)
        return IOT_EINVAL;
    struct batch_result res = {.first_idx = SIZE_MAX, .first_rc = IOT_OK};
    for (size_t base = 0; base < n; base += BATCH_PIPELINE_MAX) {
        size_t len = n - base < BATCH_PIPELINE_MAX ? n - base : BATCH_PIPELINE_MAX;
        run_slice(c, w + base, base, len, &res);
    }
    return res.first_rc;
}
