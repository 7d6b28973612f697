/* docs_common.c — helpers shared by the documents handlers (docs_common.h). */
#include "api/docs_common.h"

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

