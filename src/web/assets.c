/* assets.c — finds a dashboard file in the table cmake/embed_web.cmake
 * generated. Exact match only: a path naming no file (or trying "..")
 * finds nothing. */
#include "web/assets.h"

#include <string.h>

const struct iot_web_asset *iot_web_asset_find(const char *path)
{
    /* A dozen files: a scan is as fast as anything cleverer. */
    for (size_t i = 0; i < iot_web_n_assets; i++)
        if (strcmp(iot_web_assets[i].path, path) == 0)
            return &iot_web_assets[i];
    return NULL;
}
