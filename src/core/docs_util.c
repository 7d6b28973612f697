/* docs_util.c — helpers of the documents' domain modules (docs_util.h). */
#include "core/docs_util.h"

#include <time.h>

#include "util/clock.h"
#include "util/err.h"

#define PAUSE_STEP_US 200

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

void iot_docs_conflict_pause(int attempt)
{
    int64_t us = PAUSE_STEP_US * (int64_t)(attempt + 1) + iot_mono_us() % PAUSE_STEP_US;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(us * 1000)};
    nanosleep(&ts, NULL);
}
