/* docs_util.c — helpers of the documents' domain modules (docs_util.h). */
#include "core/docs_util.h"

#include <pthread.h>
#include <sodium.h>
#include <time.h>

#include "util/err.h"

#define PAUSE_STEP_US 1000
#define PAUSE_CAP_US 32000
_Static_assert(PAUSE_STEP_US << 5 == PAUSE_CAP_US, "the cap is the fifth doubling");

struct loaded {
    json_t *body;
    int64_t rev, ts_ms;
};

static int take_doc(void *ctx, const struct iot_doc *doc)
{
    struct loaded *l = ctx;
    l->body = json_loadb(doc->body, doc->body_len, 0, NULL);
    l->rev = doc->rev;
    l->ts_ms = doc->ts_ms;
    return 0;
}

int iot_docs_get_object(struct iot_docs *d, enum iot_docs_coll coll, const char *id,
                        json_t **body, int64_t *rev, int64_t *ts_ms)
{
    struct loaded l = {NULL, 0, 0};
    int rc = iot_docs_get(d, coll, id, take_doc, &l);
    if (rc == IOT_OK && !json_is_object(l.body))
        rc = IOT_EINTERNAL;
    if (rc) {
        json_decref(l.body);
        return rc;
    }
    *body = l.body;
    if (rev)
        *rev = l.rev;
    if (ts_ms)
        *ts_ms = l.ts_ms;
    return IOT_OK;
}

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
/* Idempotent (main ran it already); on failure randombytes still reads
 * the system's generator, and a pause needs no more. */
static void sodium_ready(void)
{
    int rc = sodium_init();
    (void)rc;
}

void iot_docs_conflict_pause(int attempt)
{
    pthread_once(&sodium_once, sodium_ready);
    /* "Full jitter": a uniform pause up to a cap that doubles per lost
     * race, so that writers that collided spread out instead of meeting
     * again; the cap stops at PAUSE_CAP_US (16 attempts wait ~0.4 s at most). */
    uint32_t cap = PAUSE_STEP_US << (attempt < 5 ? attempt : 5);
    int64_t us = PAUSE_STEP_US / 2 + randombytes_uniform(cap);
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}
