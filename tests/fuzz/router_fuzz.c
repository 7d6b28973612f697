/* router_fuzz.c — libFuzzer target for request routing (src/http/router.c)
 * on the real route table of the API (src/api/routes.c). The first byte
 * picks the method, the rest (cut at its first NUL) is the path.
 *
 * The router walks patterns in place and skips most of the table with a
 * literal-prefix shortcut; this target holds it against a plain reference
 * written here (split both on '/', compare segment by segment, most literal
 * segments win): same result, same route, same parameters, and on 405 an
 * Allow list of exactly the methods of the best-matching patterns.
 *
 * Build for fuzzing with clang -DFUZZING -fsanitize=fuzzer,address,undefined;
 * without FUZZING it is a plain program replaying files (fuzz_replay.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEGS 16
#define MAX_PATH 512

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};

struct segs {
    const char *p[MAX_SEGS + 1];
    size_t len[MAX_SEGS + 1];
    size_t n;
};

/* "/a/b/" → a, b: one leading and one trailing slash are dropped, empty
 * segments inside are kept. False for a dot segment or too many. */
static bool ref_split(const char *s, struct segs *out)
{
    out->n = 0;
    if (*s == '/')
        s++;
    if (*s == '\0')
        return true;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (out->n == MAX_SEGS)
            return false;
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        out->p[out->n] = s;
        out->len[out->n++] = len;
        if (!slash || slash[1] == '\0')
            return true;
        s = slash + 1;
    }
}

/* Literal segments matched, or -1. */
static int ref_match(const char *pattern, const struct segs *path)
{
    struct segs pat;
    if (!ref_split(pattern, &pat) || pat.n != path->n)
        return -1;
    int literals = 0;
    for (size_t i = 0; i < pat.n; i++) {
        bool param = pat.len[i] == 2 && memcmp(pat.p[i], "{}", 2) == 0;
        if (param ? path->len[i] == 0
                  : pat.len[i] != path->len[i] || memcmp(pat.p[i], path->p[i], pat.len[i]) != 0)
            return -1;
        literals += !param;
    }
    return literals;
}

static void check_params(const struct iot_route *route, const struct segs *path,
                         const struct iot_req *r)
{
    struct segs pat;
    ref_split(route->pattern, &pat);
    size_t k = 0;
    for (size_t i = 0; i < pat.n; i++) {
        if (pat.len[i] != 2 || memcmp(pat.p[i], "{}", 2) != 0)
            continue;
        if (k >= r->n_params || strlen(r->params[k]) != path->len[i] ||
            memcmp(r->params[k], path->p[i], path->len[i]) != 0)
            abort();
        k++;
    }
    if (k != r->n_params)
        abort();
}

static void check(const char *method, const char *path_text, enum iot_route_result got,
                  const struct iot_route *route, const struct iot_req *r, const char *allow)
{
    const char *as = strcmp(method, "HEAD") == 0 ? "GET" : method;
    struct segs path;
    int best_any = -1, best = -1;
    if (ref_split(path_text, &path))
        for (size_t i = 0; i < iot_api_n_routes; i++) {
            int lit = ref_match(iot_api_routes[i].pattern, &path);
            if (lit > best_any)
                best_any = lit;
            if (lit > best && strcmp(iot_api_routes[i].method, as) == 0)
                best = lit;
        }
    if (best_any < 0) {
        if (got != IOT_ROUTE_NOT_FOUND)
            abort();
    } else if (best == best_any) {
        if (got != IOT_ROUTE_FOUND || strcmp(route->method, as) != 0 ||
            ref_match(route->pattern, &path) != best)
            abort();
        check_params(route, &path, r);
    } else {
        if (got != IOT_ROUTE_BAD_METHOD || allow[0] == '\0')
            abort();
        for (size_t i = 0; i < iot_api_n_routes; i++)
            if (ref_match(iot_api_routes[i].pattern, &path) == best_any &&
                !strstr(allow, iot_api_routes[i].method))
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > MAX_PATH)
        return 0;
    const char *method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    char path[MAX_PATH + 1];
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';

    struct iot_req r = {.method = method, .path = path};
    const struct iot_route *route = NULL;
    char allow[64];
    enum iot_route_result got = iot_route(iot_api_routes, iot_api_n_routes, &r, &route, allow,
                                          sizeof allow);
    check(method, path, got, route, &r, allow);
    free(r.path_copy);
    return 0;
}

#ifndef FUZZING
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
