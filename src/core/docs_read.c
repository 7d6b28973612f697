/* docs_read.c — one document as parsed JSON (docs_read.h). */
#include "core/docs_read.h"

#include "util/err.h"

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
