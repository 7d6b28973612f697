/* cql_prepared.c — the session's prepared-statement cache: query text ->
 * handle (id, bind metadata with pk indices, result metadata), a chained
 * hash table under prep_lock. Handles are never evicted: they stay valid
 * until cql_session_free, and the cache is bounded by cfg.max_prepared. */
#include <stdlib.h>
#include <string.h>

#include "cql/cql_session_int.h"

static uint64_t hash_text(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static struct cql_prepared_stmt *find_locked(struct cql_session *s, uint64_t h, const char *q,
                                             size_t n)
{
    if (!s->n_buckets)
        return NULL;
    for (struct cql_prepared_stmt *p = s->buckets[h % s->n_buckets]; p; p = p->next)
        if (p->hash == h && p->query_len == n && memcmp(p->query, q, n) == 0)
            return p;
    return NULL;
}

struct cql_prepared_stmt *cql_prepared_find(struct cql_session *s, const char *query, size_t len)
{
    uint64_t h = hash_text(query, len);
    pthread_mutex_lock(&s->prep_lock);
    struct cql_prepared_stmt *p = find_locked(s, h, query, len);
    pthread_mutex_unlock(&s->prep_lock);
    return p;
}

struct cql_prepared_stmt *cql_prepared_find_id(struct cql_session *s, struct cql_slice id)
{
    struct cql_prepared_stmt *found = NULL;
    pthread_mutex_lock(&s->prep_lock);
    for (size_t b = 0; b < s->n_buckets && !found; b++)
        for (struct cql_prepared_stmt *p = s->buckets[b]; p && !found; p = p->next) {
            struct cql_slice pid = p->msg.result.prepared.id;
            if (pid.len == id.len && memcmp(pid.ptr, id.ptr, id.len) == 0)
                found = p;
        }
    pthread_mutex_unlock(&s->prep_lock);
    return found;
}

/* Doubles the table when it holds more entries than buckets. */
static void maybe_grow(struct cql_session *s)
{
    if (s->n_prepared < s->n_buckets)
        return;
    size_t n = s->n_buckets ? 2 * s->n_buckets : 64;
    struct cql_prepared_stmt **b = calloc(n, sizeof *b);
    if (!b)
        return; /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < s->n_buckets; i++)
        while (s->buckets[i]) {
            struct cql_prepared_stmt *p = s->buckets[i];
            s->buckets[i] = p->next;
            p->next = b[p->hash % n];
            b[p->hash % n] = p;
        }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = n;
}

static void stmt_free(struct cql_prepared_stmt *p)
{
    cql_message_free(&p->msg);
    free(p->frame);
    free(p->query);
    free(p);
}

static struct cql_prepared_stmt *stmt_new(uint64_t h, const char *query, size_t len,
                                          const uint8_t *frame, size_t frame_len)
{
    struct cql_prepared_stmt *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->hash = h;
    p->query = malloc(len + 1);
    p->frame = malloc(frame_len);
    if (!p->query || !p->frame) {
        free(p->query);
        free(p->frame);
        free(p);
        return NULL;
    }
    memcpy(p->query, query, len);
    p->query[len] = '\0';
    p->query_len = len;
    memcpy(p->frame, frame, frame_len);
    if (cql_message_decode(p->frame, frame_len, &p->msg) ||
        p->msg.env.header.opcode != CQL_OP_RESULT || p->msg.result.kind != CQL_RESULT_PREPARED) {
        cql_message_free(&p->msg);
        p->msg = (struct cql_message){0};
        stmt_free(p);
        return NULL;
    }
    return p;
}

struct cql_prepared_stmt *cql_prepared_insert(struct cql_session *s, const char *query, size_t len,
                                              const uint8_t *frame, size_t frame_len)
{
    uint64_t h = hash_text(query, len);
    pthread_mutex_lock(&s->prep_lock);
    struct cql_prepared_stmt *p = find_locked(s, h, query, len);
    if (!p && s->n_prepared < s->cfg.max_prepared) {
        maybe_grow(s);
        p = s->n_buckets ? stmt_new(h, query, len, frame, frame_len) : NULL;
        if (p) {
            p->next = s->buckets[h % s->n_buckets];
            s->buckets[h % s->n_buckets] = p;
            s->n_prepared++;
        }
    }
    pthread_mutex_unlock(&s->prep_lock);
    return p;
}

void cql_prepared_free_all(struct cql_session *s)
{
    for (size_t i = 0; i < s->n_buckets; i++)
        while (s->buckets[i]) {
            struct cql_prepared_stmt *p = s->buckets[i];
            s->buckets[i] = p->next;
            stmt_free(p);
        }
    free(s->buckets);
    s->buckets = NULL;
    s->n_buckets = s->n_prepared = 0;
}

const char *cql_prepared_query(const struct cql_prepared_stmt *ps)
{
    return ps ? ps->query : "";
}

const struct cql_metadata *cql_prepared_params(const struct cql_prepared_stmt *ps)
{
    return ps ? &ps->msg.result.prepared.params : NULL;
}

const struct cql_metadata *cql_prepared_result(const struct cql_prepared_stmt *ps)
{
    return ps ? &ps->msg.result.prepared.result : NULL;
}
