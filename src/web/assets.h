/* assets.h — the dashboard's files (src/web), compiled into the binary.
 *
 * cmake/embed_web.cmake generates the table at build time: each file's
 * path below src/web, bytes, content type and ETag (a hash of the bytes).
 * Static and read-only: any thread may look up, nothing is freed. */
#ifndef IOT_WEB_ASSETS_H
#define IOT_WEB_ASSETS_H

#include <stddef.h>

struct iot_web_asset {
    const char *path; /* "index.html", "js/app.js", ... */
    const unsigned char *data;
    size_t len;
    const char *content_type;
    const char *etag; /* quoted, ready for the ETag header */
};

/* The generated table, sorted by path. */
extern const struct iot_web_asset iot_web_assets[];
extern const size_t iot_web_n_assets;

/* The asset at exactly this path (no leading '/'), or NULL. */
const struct iot_web_asset *iot_web_asset_find(const char *path);

#endif
