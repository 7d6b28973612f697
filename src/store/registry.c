/* registry.c — the table of compiled-in registry backends, the
 * open/close entry points that pick one by URL scheme, the record
 * defaults every backend fills in before an insert, and the pending
 * clean-ups' kind names and error length, alike on every backend. */
#include "store/registry.h"

#include <sodium.h>
#include <string.h>

#include "store/backend.h"
#include "store/postgres/registry_pg.h"
#include "store/sqlite/registry_sqlite.h"
#include "util/clock.h"
#include "util/err.h"

/* A URL with no known scheme is a path for the embedded default. libpq
 * accepts both PostgreSQL spellings. */
static const struct iot_backend_scheme backends[] = {
    {.scheme = "sqlite", .ops = &iot_registry_sqlite},
    {.scheme = "postgres", .ops = &iot_registry_postgres},
    {.scheme = "postgresql", .ops = &iot_registry_postgres},
};

const struct iot_registry_ops *iot_registry_backend(const char *url)
{
    return iot_backend_pick(url, backends, sizeof backends / sizeof backends[0],
                            &iot_registry_sqlite, true);
}

const char *iot_registry_backend_names(void)
{
    return "sqlite, postgres";
}

int iot_registry_open(const char *url, struct iot_registry *out)
{
    if (!out)
        return IOT_EINVAL;
    out->ops = NULL;
    out->self = NULL;
    const struct iot_registry_ops *ops = iot_registry_backend(url);
    if (!ops)
        return IOT_EINVAL;
    void *self = NULL;
    int rc = ops->open(url ? url : "", &self);
    if (rc)
        return rc;
    out->ops = ops;
    out->self = self;
    return IOT_OK;
}

void iot_registry_close(struct iot_registry *reg)
{
    if (!reg)
        return;
    if (reg->ops && reg->self)
        reg->ops->close(reg->self);
    reg->ops = NULL;
    reg->self = NULL;
}

/* created_at and updated_at, each now when 0 (one clock read for both). */
static void stamp_new(int64_t *created_at, int64_t *updated_at)
{
    int64_t now = iot_now_ms();
    if (!*created_at)
        *created_at = now;
    if (!*updated_at)
        *updated_at = now;
}

void iot_reg_user_defaults(struct iot_user *u)
{
    if (!u->user_id[0]) {
        unsigned char rnd[IOT_USER_ID_LEN / 2];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(u->user_id, sizeof u->user_id, rnd, sizeof rnd);
    }
    stamp_new(&u->created_at, &u->updated_at);
}

void iot_reg_device_defaults(struct iot_device *d)
{
    if (!d->status[0])
        memcpy(d->status, "active", sizeof "active");
    if (!d->status_set_by[0])
        memcpy(d->status_set_by, IOT_STATUS_BY_NEW, sizeof IOT_STATUS_BY_NEW);
    stamp_new(&d->created_at, &d->updated_at);
}

void iot_reg_group_defaults(struct iot_group *g)
{
    stamp_new(&g->created_at, &g->updated_at);
    g->device_count = 0;
}

const char *iot_reg_cleanup_kind_name(enum iot_cleanup_kind kind)
{
    switch (kind) {
    case IOT_CLEANUP_DEVICE: return "device";
    case IOT_CLEANUP_USER: return "user";
    default: return NULL;
    }
}

bool iot_reg_cleanup_kind_parse(const char *name, enum iot_cleanup_kind *out)
{
    if (name && strcmp(name, "device") == 0)
        *out = IOT_CLEANUP_DEVICE;
    else if (name && strcmp(name, "user") == 0)
        *out = IOT_CLEANUP_USER;
    else
        return false;
    return true;
}

size_t iot_reg_cleanup_error_len(const char *error)
{
    size_t n = strnlen(error, IOT_CLEANUP_ERROR_MAX + 1);
    if (n <= IOT_CLEANUP_ERROR_MAX)
        return n;
    n = IOT_CLEANUP_ERROR_MAX;
    /* error[n] is the first byte dropped: while it continues a character,
     * that character starts before n and goes too */
    while (n > 0 && ((unsigned char)error[n] & 0xC0) == 0x80)
        n--;
    return n;
}
