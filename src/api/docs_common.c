/* docs_common.c — helpers shared by the documents handlers (docs_common.h). */
#include "api/docs_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void iot_reply_docs_error(struct iot_req *r, int rc, const char *what, size_t limit)
{
    if (rc == IOT_ELIMIT) {
        iot_reply_error(r, 413, "Payload Too Large", "the %s exceeds %zu bytes", what, limit);
        return;
    }
    iot_reply_store_error(r, rc, what);
}

const char *iot_docs_actor(const struct iot_principal *p)
{
    return p->has_user ? p->user.user_id : "admin";
}

void iot_reply_body(struct iot_req *r, int status, const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, body, len);
        copy[len] = '\0';
    }
    iot_reply_raw(r, status, copy, len);
}

/* "<ts>.<id>": a dot never starts an id of ours, and the id's own
 * characters ([A-Za-z0-9_.:-]) need no escaping in a query string. */
void iot_docs_cursor_format(int64_t ts, const char *id, char *buf, size_t size)
{
    snprintf(buf, size, "%lld.%s", (long long)ts, id);
}

bool iot_docs_cursor_read(struct iot_req *r, struct iot_docs_cursor *c)
{
    memset(c, 0, sizeof *c);
    const char *s = iot_req_query(r, "cursor");
    if (!s || !*s)
        return true;
    char *end;
    errno = 0;
    long long ts = strtoll(s, &end, 10);
    bool ok = !errno && end != s && (*s == '-' || (*s >= '0' && *s <= '9')) && *end == '.' &&
              strlen(end + 1) <= IOT_DOCS_ID_MAX && iot_docs_check_id(end + 1) == IOT_OK;
    if (!ok) {
        iot_reply_error(r, 400, "Invalid cursor", "use the next_cursor of the previous page");
        return false;
    }
    c->set = true;
    c->ts = ts;
    snprintf(c->id, sizeof c->id, "%s", end + 1);
    return true;
}
