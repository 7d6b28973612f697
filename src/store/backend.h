/* backend.h — the one rule by which every store interface (registry,
 * telemetry, cache, documents) picks its backend from a URL, so that the
 * four agree on spelling and case.
 *
 * No URL or "" is the embedded backend. Otherwise the scheme is the text
 * before the first ':' (or, for an interface that takes no paths, the whole
 * URL when it has none), compared case-insensitively with the table's: "sqlite:x.db", "SQLite:x.db",
 * "memory", "redis://…" and "postgresql://…" all pick by scheme. A URL
 * whose scheme is not in the table is a file path for the embedded backend
 * when the interface takes paths (`paths`) and the URL has no "://";
 * otherwise no backend matches (NULL), and the caller says which exist. */
#ifndef IOT_STORE_BACKEND_H
#define IOT_STORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

struct iot_backend_scheme {
    const char *scheme; /* without ':' */
    const void *ops;
};

const void *iot_backend_pick(const char *url, const struct iot_backend_scheme *table, size_t n,
                             const void *embedded, bool paths);

#endif
