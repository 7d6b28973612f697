/* docs_common.c — helpers shared by the documents handlers (docs_common.h). */
#include "api/docs_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "util/err.h"
#include "util/log.h"

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

bool iot_docs_orphaned(struct iot_app *app, enum iot_docs_coll coll, int64_t device_id,
                       int64_t user_id)
{
    struct iot_device d;
    struct iot_user u;
    int rc = device_id ? iot_reg_device_get(&app->registry, device_id, &d)
                       : iot_reg_user_get_by_id(&app->registry, user_id, &u);
    if (rc != IOT_ENOTFOUND)
        return false; /* there, or unknown: the cleaner covers a delete it cannot see */
    struct iot_docs_filter f = {.device_id = device_id, .user_id = device_id ? 0 : user_id};
    rc = iot_docs_delete_where(&app->docs, coll, &f, NULL);
    if (rc)
        IOT_WARN("documents written for deleted %s %lld not removed: %s",
                 device_id ? "device" : "user", (long long)(device_id ? device_id : user_id),
                 iot_strerror(rc));
    return true;
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

/* At most 18 digits: every such number fits an int64, so what the cursor
 * grammar accepts always parses (no overflow to refuse separately). */
#define CURSOR_TS_DIGITS_MAX 18

bool iot_docs_cursor_read(struct iot_req *r, struct iot_docs_cursor *c)
{
    memset(c, 0, sizeof *c);
    const char *s = iot_req_query(r, "cursor");
    if (!s || !*s)
        return true;
    const char *digits = s + (*s == '-');
    size_t n = strspn(digits, "0123456789");
    const char *id = digits + n + 1;
    if (n == 0 || n > CURSOR_TS_DIGITS_MAX || digits[n] != '.' || iot_docs_check_id(id)) {
        iot_reply_error(r, 400, "Invalid cursor", "use the next_cursor of the previous page");
        return false;
    }
    c->set = true;
    c->ts = strtoll(s, NULL, 10);
    snprintf(c->id, sizeof c->id, "%s", id);
    return true;
}
