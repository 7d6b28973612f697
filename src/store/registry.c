/* registry.c — the table of compiled-in registry backends and the
 * open/close entry points that pick one by URL scheme. */
#include "store/registry.h"

#include <string.h>
#include <strings.h>

#include "store/postgres/registry_pg.h"
#include "store/sqlite/registry_sqlite.h"
#include "util/err.h"

struct backend {
    const char *scheme; /* URL prefix, matched case-insensitively */
    const struct iot_registry_ops *ops; /* NULL: known but not compiled in */
};

/* Known schemes. A URL with no "scheme:" prefix is a path for the embedded
 * default (SQLite). libpq accepts both PostgreSQL spellings. */
static const struct backend backends[] = {
    {.scheme = "sqlite:", .ops = &iot_registry_sqlite},
    {.scheme = "postgres://", .ops = &iot_registry_postgres},
    {.scheme = "postgresql://", .ops = &iot_registry_postgres},
};
#define N_BACKENDS (sizeof backends / sizeof backends[0])

/* "scheme:" followed by "//", the shape of a URL rather than of a path. A
 * path such as "data/registry.db" or "C:..." never has "://". */
static bool looks_like_url(const char *url)
{
    return strstr(url, "://") != NULL;
}

const struct iot_registry_ops *iot_registry_backend(const char *url)
{
    if (!url || !url[0])
        return &iot_registry_sqlite;
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (strncasecmp(url, backends[i].scheme, strlen(backends[i].scheme)) == 0)
            return backends[i].ops;
    return looks_like_url(url) ? NULL : &iot_registry_sqlite;
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
