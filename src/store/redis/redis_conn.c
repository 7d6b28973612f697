/* redis_conn.c — what every Redis connection of the backend shares: parsing
 * the redis:// URL, the handshake (connect with a timeout, AUTH, SELECT,
 * PING, script loading), the argument builder and the mapping of Redis
 * error replies to IOT_E* codes. The pool itself is in redis_pool.c. */
#include "store/redis/redis_conn.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "util/err.h"
#include "util/hex.h"
#include "util/log.h"

#define CONNECT_TIMEOUT_MS 200
#define COMMAND_TIMEOUT_MS 1000

/* ---- URL parsing ---- */

static int url_error(const char *what)
{
    /* Never print the URL itself: it may hold the password. */
    IOT_ERROR("redis URL: %s (expected redis://[[user]:password@]host[:port][/db][?prefix=NS])",
              what);
    return IOT_EINVAL;
}

/* Copies s[0..n) into out (cap bytes with the NUL), decoding %XX. Fails on
 * a malformed escape, an encoded NUL, or when the text does not fit. */
static int url_decode(const char *s, size_t n, char *out, size_t cap, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi = i + 2 < n ? iot_hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < n ? iot_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return IOT_EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return IOT_EINVAL;
        out[o++] = ch;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return IOT_OK;
}

/* A decimal in [min, max] spanning s[0..n). */
static bool parse_uint_range(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 10)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* "[user]:password" (the part before '@'). */
static int parse_userinfo(const char *s, size_t n, struct iot_redis_cfg *cfg)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return url_error("credentials must be [user]:password");
    size_t ulen = (size_t)(colon - s);
    if (url_decode(s, ulen, cfg->user, sizeof cfg->user, NULL) != IOT_OK)
        return url_error("bad or too long user name");
    if (url_decode(colon + 1, n - ulen - 1, cfg->password, sizeof cfg->password, NULL) !=
        IOT_OK)
        return url_error("bad or too long password");
    return IOT_OK;
}

/* "host[:port]" or "[v6addr][:port]"; an empty host is 127.0.0.1. */
static int parse_hostport(const char *s, size_t n, struct iot_redis_cfg *cfg)
{
    const char *host = s, *port = NULL;
    size_t hlen = n, plen = 0;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return url_error("unclosed '[' in host");
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t after = n - (size_t)(close + 1 - s);
        if (after > 0) {
            if (close[1] != ':')
                return url_error("junk after ']' in host");
            port = close + 2;
            plen = after - 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            if (memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)))
                return url_error("IPv6 addresses go in brackets");
            hlen = (size_t)(colon - s);
            port = colon + 1;
            plen = n - hlen - 1;
        }
    }
    if (hlen == 0) {
        snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
    } else if (hlen >= sizeof cfg->host || memchr(host, '%', hlen)) {
        return url_error("bad host");
    } else {
        memcpy(cfg->host, host, hlen);
        cfg->host[hlen] = '\0';
    }
    long v;
    if (port) {
        if (!parse_uint_range(port, plen, 1, 65535, &v))
            return url_error("port must be 1-65535");
        cfg->port = (int)v;
    }
    return IOT_OK;
}

/* "prefix=NS[&…]"; no other parameter exists, so any other is a typo. */
static int parse_query(const char *s, struct iot_redis_cfg *cfg)
{
    while (*s) {
        const char *amp = strchr(s, '&');
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        if (n >= 7 && memcmp(s, "prefix=", 7) == 0) {
            if (url_decode(s + 7, n - 7, cfg->prefix, sizeof cfg->prefix, &cfg->prefix_len) !=
                IOT_OK)
                return url_error("bad prefix, or longer than 64 bytes");
        } else if (n > 0) {
            return url_error("unknown parameter (only prefix= is known)");
        }
        s += n;
        if (*s == '&')
            s++;
    }
    return IOT_OK;
}

int iot_redis_parse_url(const char *url, struct iot_redis_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = IOT_REDIS_DEFAULT_PORT;
    snprintf(cfg->prefix, sizeof cfg->prefix, "%s", IOT_REDIS_DEFAULT_PREFIX);
    cfg->prefix_len = strlen(cfg->prefix);
    static const char scheme[] = "redis://";
    if (!url || strncasecmp(url, scheme, sizeof scheme - 1) != 0)
        return url_error("must start with redis://");
    const char *rest = url + sizeof scheme - 1;
    const char *query = strchr(rest, '?');
    const char *end = query ? query : rest + strlen(rest);
    /* The last '@' ends the credentials, so a raw '@' in a password works. */
    const char *at = NULL;
    for (const char *p = rest; p < end; p++) {
        if (*p == '@')
            at = p;
    }
    const char *hostpart = rest;
    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), cfg) != IOT_OK)
            return IOT_EINVAL;
        hostpart = at + 1;
    }
    const char *slash = memchr(hostpart, '/', (size_t)(end - hostpart));
    const char *hostend = slash ? slash : end;
    if (parse_hostport(hostpart, (size_t)(hostend - hostpart), cfg) != IOT_OK)
        return IOT_EINVAL;
    if (slash && slash + 1 < end) {
        long db;
        if (!parse_uint_range(slash + 1, (size_t)(end - slash - 1), 0, INT_MAX, &db))
            return url_error("database must be a number");
        cfg->db = (int)db;
    }
    if (query && parse_query(query + 1, cfg) != IOT_OK)
        return IOT_EINVAL;
    return IOT_OK;
}

/* ---- the handshake ---- */

enum step { STEP_AUTH, STEP_SELECT, STEP_PING, STEP_SCRIPT };

static const char *step_name(enum step s)
{
    switch (s) {
    case STEP_AUTH:
        return "authentication refused";
    case STEP_SELECT:
        return "SELECT refused";
    case STEP_PING:
        return "PING refused";
    case STEP_SCRIPT:
        return "SCRIPT LOAD refused";
    }
    return "?";
}

/* Queues AUTH/SELECT/PING/SCRIPT LOAD; steps[] records what each reply
 * answers. Returns the number of commands, or -1 when out of memory. */
static int queue_handshake(redisContext *ctx, const struct iot_redis_cfg *cfg,
                           const struct iot_redis_script *scripts, size_t n_scripts,
                           enum step *steps)
{
    int n = 0;
    bool ok = true;
    if (cfg->user[0] || cfg->password[0]) {
        /* Redis 6 ACL form when there is a user, the classic form else. */
        if (cfg->user[0])
            ok = ok && redisAppendCommand(ctx, "AUTH %s %s", cfg->user, cfg->password) == REDIS_OK;
        else
            ok = ok && redisAppendCommand(ctx, "AUTH %s", cfg->password) == REDIS_OK;
        steps[n++] = STEP_AUTH;
    }
    if (cfg->db != 0) {
        ok = ok && redisAppendCommand(ctx, "SELECT %d", cfg->db) == REDIS_OK;
        steps[n++] = STEP_SELECT;
    }
    ok = ok && redisAppendCommand(ctx, "PING") == REDIS_OK;
    steps[n++] = STEP_PING;
    for (size_t i = 0; i < n_scripts; i++) {
        ok = ok && redisAppendCommand(ctx, "SCRIPT LOAD %s", scripts[i].body) == REDIS_OK;
        steps[n++] = STEP_SCRIPT;
    }
    return ok ? n : -1;
}

/* Reads the handshake's replies; the first refusal decides the outcome. */
static int read_handshake(redisContext *ctx, const enum step *steps, int n,
                          struct iot_redis_script *scripts, bool learn_sha, char *why,
                          size_t why_len)
{
    int rc = IOT_OK;
    size_t script = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r) {
            snprintf(why, why_len, "%s", ctx->errstr[0] ? ctx->errstr : "no answer");
            return IOT_EUNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_ERROR && rc == IOT_OK) {
            bool noauth = r->len >= 6 && memcmp(r->str, "NOAUTH", 6) == 0;
            snprintf(why, why_len, "%s: %.*s",
                     noauth ? "the server requires a password" : step_name(steps[i]),
                     (int)(r->len > 160 ? 160 : r->len), r->str);
            rc = steps[i] == STEP_SCRIPT ? IOT_EINTERNAL : IOT_EINVAL;
        } else if (steps[i] == STEP_SCRIPT) {
            if (learn_sha && r->type == REDIS_REPLY_STRING && r->len == 40)
                memcpy(scripts[script].sha, r->str, 41);
            script++;
        }
        freeReplyObject(r);
    }
    return rc;
}

int iot_redis_connect(const struct iot_redis_cfg *cfg, struct iot_redis_script *scripts,
                      size_t n_scripts, bool learn_sha, redisContext **out, char *why,
                      size_t why_len)
{
    *out = NULL;
    why[0] = '\0';
    if (n_scripts > IOT_REDIS_SCRIPTS_MAX)
        return IOT_EINTERNAL;
    const struct timeval connect_tv = {.tv_sec = 0, .tv_usec = CONNECT_TIMEOUT_MS * 1000};
    const struct timeval command_tv = {.tv_sec = COMMAND_TIMEOUT_MS / 1000,
                                       .tv_usec = (COMMAND_TIMEOUT_MS % 1000) * 1000};
    redisContext *ctx = redisConnectWithTimeout(cfg->host, cfg->port, connect_tv);
    if (!ctx) {
        snprintf(why, why_len, "out of memory");
        return IOT_ENOMEM;
    }
    if (ctx->err || redisSetTimeout(ctx, command_tv) != REDIS_OK ||
        redisEnableKeepAlive(ctx) != REDIS_OK) {
        snprintf(why, why_len, "%s", ctx->errstr[0] ? ctx->errstr : "cannot connect");
        redisFree(ctx);
        return IOT_EUNAVAILABLE;
    }
    enum step steps[3 + IOT_REDIS_SCRIPTS_MAX];
    int n = queue_handshake(ctx, cfg, scripts, n_scripts, steps);
    int rc = n < 0 ? IOT_ENOMEM
                   : read_handshake(ctx, steps, n, scripts, learn_sha, why, why_len);
    if (rc != IOT_OK) {
        if (n < 0)
            snprintf(why, why_len, "out of memory");
        redisFree(ctx);
        return rc;
    }
    *out = ctx;
    return IOT_OK;
}

/* ---- argument builder ---- */

void iot_redis_argv_init(struct iot_redis_argv *a)
{
    a->argc = 0;
    a->cap = IOT_REDIS_ARGV_INLINE;
    a->failed = false;
    a->n_nums = 0;
    a->argv = a->inline_argv;
    a->lens = a->inline_lens;
}

void iot_redis_argv_free(struct iot_redis_argv *a)
{
    if (a->argv != a->inline_argv) {
        free(a->argv);
        free(a->lens);
    }
    iot_redis_argv_init(a);
}

static bool argv_grow(struct iot_redis_argv *a)
{
    if (a->cap > INT_MAX / 2)
        return false;
    int ncap = a->cap * 2;
    const char **argv = malloc((size_t)ncap * sizeof *argv);
    size_t *lens = malloc((size_t)ncap * sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return false;
    }
    memcpy(argv, a->argv, (size_t)a->argc * sizeof *argv);
    memcpy(lens, a->lens, (size_t)a->argc * sizeof *lens);
    if (a->argv != a->inline_argv) {
        free(a->argv);
        free(a->lens);
    }
    a->argv = argv;
    a->lens = lens;
    a->cap = ncap;
    return true;
}

void iot_redis_argv_add(struct iot_redis_argv *a, const char *p, size_t len)
{
    if (a->failed)
        return;
    if (a->argc == a->cap && !argv_grow(a)) {
        a->failed = true;
        return;
    }
    a->argv[a->argc] = p ? p : "";
    a->lens[a->argc] = len;
    a->argc++;
}

void iot_redis_argv_str(struct iot_redis_argv *a, const char *s)
{
    iot_redis_argv_add(a, s, strlen(s));
}

void iot_redis_argv_i64(struct iot_redis_argv *a, int64_t v)
{
    if (a->n_nums == IOT_REDIS_ARGV_NUMS) {
        a->failed = true; /* a bug: more numbers than any command needs */
        return;
    }
    char *buf = a->nums[a->n_nums++];
    int n = snprintf(buf, sizeof a->nums[0], "%lld", (long long)v);
    iot_redis_argv_add(a, buf, (size_t)n);
}

/* ---- error replies ---- */

/* The error code of a reply is its first word ("WRONGTYPE Operation…"). */
static bool error_code_is(const redisReply *r, const char *code)
{
    size_t n = strlen(code);
    return r->len >= n && memcmp(r->str, code, n) == 0 && (r->len == n || r->str[n] == ' ');
}

static bool error_starts(const redisReply *r, const char *text)
{
    size_t n = strlen(text);
    return r->len >= n && memcmp(r->str, text, n) == 0;
}

int iot_redis_reply_rc(const redisReply *r)
{
    if (!r)
        return IOT_EINTERNAL;
    if (r->type != REDIS_REPLY_ERROR)
        return IOT_OK;
    if (error_code_is(r, "WRONGTYPE") || error_starts(r, "ERR value is not") ||
        error_starts(r, "ERR value is out of range") ||
        error_starts(r, "ERR increment or decrement would overflow"))
        return IOT_EINVAL;
    /* The server cannot serve us right now: the same answer as no server. */
    static const char *const down[] = {
        "LOADING",  "BUSY",       "OOM",     "NOAUTH",   "WRONGPASS",   "NOPERM",
        "READONLY", "MASTERDOWN", "MISCONF", "TRYAGAIN", "CLUSTERDOWN",
    };
    for (size_t i = 0; i < sizeof down / sizeof down[0]; i++) {
        if (error_code_is(r, down[i]))
            return IOT_EUNAVAILABLE;
    }
    if (error_starts(r, "ERR max number of clients"))
        return IOT_EUNAVAILABLE;
    IOT_WARN("redis: unexpected error reply: %.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
    return IOT_EINTERNAL;
}

bool iot_redis_is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && error_code_is(r, "NOSCRIPT");
}
