#include "http/router.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS 16

struct segments {
    const char *ptr[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    size_t n;
};

/* Splits "/a/b/c/" into a, b, c. Returns false for too many segments or a
 * dot segment. Empty
 * segments ("//") are kept so that they never match a parameter. */
static bool split_path(const char *path, struct segments *s)
{
    s->n = 0;
    const char *p = path;
    if (*p == '/')
        p++;
    while (*p) {
        if (s->n == MAX_SEGMENTS)
            return false;
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        /* "." and ".." name no resource here; refusing them keeps a path
         * from ever meaning something other than what it spells. */
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        s->ptr[s->n] = p;
        s->len[s->n] = len;
        s->n++;
        if (!slash)
            break;
        p = slash + 1; /* a trailing slash ends the loop: "/a/" == "/a" */
    }
    return true;
}

/* Returns the number of literal segments matched, or -1 for no match.
 * Walks the pattern in place: routing runs on every request. */
static int match_pattern(const char *pattern, const struct segments *path)
{
    const char *p = pattern + (*pattern == '/');
    int literals = 0;
    size_t i = 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (i == path->n)
            return -1;
        if (len == 2 && p[0] == '{' && p[1] == '}') {
            if (path->len[i] == 0)
                return -1;
        } else if (len != path->len[i] || memcmp(p, path->ptr[i], len) != 0) {
            return -1;
        } else {
            literals++;
        }
        i++;
        p = end ? end + 1 : p + len;
    }
    return i == path->n ? literals : -1;
}

/* A quick, exact pre-check: a path can match a pattern only if its text
 * starts with the pattern's literal text up to the first "{}" (segments are
 * separated by single slashes on both sides). One pass over a few bytes
 * rejects most of the table before match_pattern splits anything. */
static bool literal_prefix_matches(const char *pattern, const char *path)
{
    if (pattern[0] != '/' || path[0] != '/')
        return true; /* no shortcut: let match_pattern decide */
    for (; *pattern && *pattern != '{'; pattern++, path++)
        if (*pattern != *path)
            return false;
    return true;
}

static void fill_params(const char *pattern, struct iot_req *r)
{
    struct segments pat, path;
    free(r->path_copy);
    r->path_copy = strdup(r->path);
    r->n_params = 0;
    if (!r->path_copy || !split_path(pattern, &pat) || !split_path(r->path_copy, &path))
        return;
    for (size_t i = 0; i < pat.n && r->n_params < IOT_ROUTE_MAX_PARAMS; i++) {
        if (pat.len[i] == 2 && memcmp(pat.ptr[i], "{}", 2) == 0) {
            char *seg = (char *)path.ptr[i];
            seg[path.len[i]] = '\0'; /* cut at the next slash in our copy */
            r->params[r->n_params++] = seg;
        }
    }
}

static void append_method(char *allow, size_t size, const char *method)
{
    if (strstr(allow, method))
        return;
    size_t used = strlen(allow);
    if (used + strlen(method) + 3 > size)
        return;
    if (used)
        strcat(allow, ", ");
    strcat(allow, method);
}

enum iot_route_result iot_route(const struct iot_route *routes, size_t n, struct iot_req *r,
                                const struct iot_route **out, char *allow, size_t allow_size)
{
    struct segments path;
    allow[0] = '\0';
    if (!split_path(r->path, &path))
        return IOT_ROUTE_NOT_FOUND;
    const struct iot_route *best = NULL;
    int best_literals = -1, best_any = -1;
    /* HEAD is GET without a body; libmicrohttpd drops the body itself. */
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    for (size_t i = 0; i < n; i++) {
        if (!literal_prefix_matches(routes[i].pattern, r->path))
            continue;
        int literals = match_pattern(routes[i].pattern, &path);
        if (literals < 0)
            continue;
        if (literals > best_any)
            best_any = literals;
        if (strcmp(routes[i].method, method) == 0 && literals > best_literals) {
            best = &routes[i];
            best_literals = literals;
        }
    }
    if (best && best_literals == best_any) {
        fill_params(best->pattern, r);
        *out = best;
        return IOT_ROUTE_FOUND;
    }
    if (best_any < 0)
        return IOT_ROUTE_NOT_FOUND;
    /* The most specific pattern exists but not for this method. */
    for (size_t i = 0; i < n; i++)
        if (match_pattern(routes[i].pattern, &path) == best_any)
            append_method(allow, allow_size, routes[i].method);
    return IOT_ROUTE_BAD_METHOD;
}
