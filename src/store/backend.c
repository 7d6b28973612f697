/* backend.c — the backend lookup shared by the four store interfaces
 * (rules in backend.h). */
#include "store/backend.h"

#include <string.h>
#include <strings.h>

const void *iot_backend_pick(const char *url, const struct iot_backend_scheme *table, size_t n,
                             const void *embedded, bool paths)
{
    if (!url || !url[0])
        return embedded;
    size_t scheme_len = strcspn(url, ":");
    /* Without a ':' the URL names a file where paths are taken ("postgres"
     * is then a file, not PostgreSQL), and a backend ("memory") elsewhere. */
    if (!url[scheme_len] && paths)
        return embedded;
    for (size_t i = 0; i < n; i++)
        if (strlen(table[i].scheme) == scheme_len &&
            strncasecmp(url, table[i].scheme, scheme_len) == 0)
            return table[i].ops;
    if (paths && !strstr(url, "://"))
        return embedded;
    return NULL;
}
