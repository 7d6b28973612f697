#include "http/cors.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "util/text.h"

/* An origin without the blanks around it and without trailing slashes
 * (an operator may write "https://a.example/"; a browser never sends one).
 * The blanks again after the slashes: "https://a.example/ ". */
static const char *origin_item(const char *s, size_t *len)
{
    s = iot_trim_ows(s, len);
    while (*len && s[*len - 1] == '/') {
        (*len)--;
        s = iot_trim_ows(s, len);
    }
    return s;
}

int iot_cors_parse(const char *list, struct iot_cors *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    out->origins = calloc(cap, sizeof *out->origins);
    if (!out->origins)
        return IOT_ENOMEM;
    for (const char *p = list; *p;) {
        size_t span = strcspn(p, ",");
        size_t len = span;
        const char *item = origin_item(p, &len);
        if (len == 1 && item[0] == '*')
            out->any = true;
        else if (len && !(out->origins[out->n++] = strndup(item, len)))
            return IOT_ENOMEM;
        p += span;
        p += *p == ',';
    }
    if (out->n == 0)
        out->any = true; /* nothing listed: the original's default */
    return IOT_OK;
}

void iot_cors_free(struct iot_cors *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->origins[i]);
    free(c->origins);
    memset(c, 0, sizeof *c);
}

const char *iot_cors_allow_origin(const struct iot_cors *c, const char *origin, bool *vary)
{
    *vary = false;
    if (c->any)
        return "*";
    *vary = true;
    if (!origin)
        return NULL;
    /* Scheme and host are case-insensitive; a browser sends them in lower
     * case, an operator may not have written them so. */
    for (size_t i = 0; i < c->n; i++)
        if (strcasecmp(c->origins[i], origin) == 0)
            return origin;
    return NULL;
}
