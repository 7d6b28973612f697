/* pg_url.c — DATABASE_URL handling for the PostgreSQL stores: our pool_size
 * parameter out, a default connect_timeout in, and password-free log text.
 *
 * Why redact libpq's messages at all: most never contain the password, but
 * a few parser errors quote the part of the URL they choke on, and a log
 * line is the wrong place to find out which. */
#include "store/postgres/pg_url.h"

#include <libpq-fe.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Parameters added when the URL does not set them. connect_timeout bounds a
 * connect to a dead server; tcp_user_timeout (ms) drops a connection whose
 * sent data stays unacknowledged, i.e. a server host that vanished, without
 * cutting a slow statement short (its packets are acknowledged). */
static const struct {
    const char *key;
    const char *param;
} defaults[] = {
    {"connect_timeout", "connect_timeout=2"},
    {"tcp_user_timeout", "tcp_user_timeout=2000"},
};
enum { N_DEFAULTS = sizeof defaults / sizeof defaults[0], DEFAULTS_LEN = 64 };

/* "key" or "key=value" at p (plen bytes) for this key. */
static bool param_is(const char *p, size_t plen, const char *key)
{
    size_t k = strlen(key);
    return plen >= k && memcmp(p, key, k) == 0 && (plen == k || p[k] == '=');
}

/* Decimal 1..IOT_PG_POOL_MAX, nothing else (no sign, no spaces). */
static int parse_pool_size(const char *v, size_t vlen, int *out)
{
    if (vlen == 0 || vlen > 2)
        return IOT_EINVAL;
    int n = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return IOT_EINVAL;
        n = n * 10 + (v[i] - '0');
    }
    if (n < 1 || n > IOT_PG_POOL_MAX)
        return IOT_EINVAL;
    *out = n;
    return IOT_OK;
}

static void wipe_free(char *s, size_t size)
{
    if (!s)
        return;
    sodium_memzero(s, size);
    free(s);
}

/* Copies the query parameters of `query` (after '?') to out + *n, dropping
 * pool_size (parsed into *pool_size) and noting which defaults[] are set. */
static int copy_params(const char *query, char *out, size_t *n, int *pool_size,
                       bool has_default[N_DEFAULTS])
{
    char sep = '?';
    for (const char *p = query; p;) {
        const char *end = strchr(p, '&');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        if (param_is(p, plen, "pool_size")) {
            size_t k = sizeof "pool_size" - 1;
            const char *v = plen > k ? p + k + 1 : p + k;
            if (parse_pool_size(v, plen > k ? plen - k - 1 : 0, pool_size))
                return IOT_EINVAL;
        } else if (plen > 0) {
            for (int i = 0; i < N_DEFAULTS; i++)
                if (param_is(p, plen, defaults[i].key))
                    has_default[i] = true;
            out[(*n)++] = sep;
            memcpy(out + *n, p, plen);
            *n += plen;
            sep = '&';
        }
        p = end ? end + 1 : NULL;
    }
    return IOT_OK;
}

int iot_pg_url_parse(const char *url, char **conninfo, int *pool_size)
{
    *conninfo = NULL;
    *pool_size = IOT_PG_POOL_DEFAULT;
    size_t len = strnlen(url, IOT_PG_URL_MAX + 1);
    if (len > IOT_PG_URL_MAX)
        return IOT_EINVAL;
    size_t cap = len + DEFAULTS_LEN + 2;
    char *out = malloc(cap);
    if (!out)
        return IOT_ENOMEM;
    const char *q = memchr(url, '?', len);
    size_t base = q ? (size_t)(q - url) : len, n = base;
    memcpy(out, url, n);
    bool has_default[N_DEFAULTS] = {false};
    int rc = q ? copy_params(q + 1, out, &n, pool_size, has_default) : IOT_OK;
    for (int i = 0; rc == IOT_OK && i < N_DEFAULTS; i++) {
        if (has_default[i])
            continue;
        char sep = n > base ? '&' : '?'; /* '&' once the query has a parameter */
        out[n++] = sep;
        size_t plen = strlen(defaults[i].param);
        memcpy(out + n, defaults[i].param, plen);
        n += plen;
    }
    out[n] = '\0';
    if (rc == IOT_OK) {
        /* libpq's own parser decides what is valid; its message may quote
         * the password, so it is dropped, not logged */
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(out, &err);
        if (!opts)
            rc = IOT_EINVAL;
        PQconninfoFree(opts);
        if (err)
            PQfreemem(err);
    }
    if (rc) {
        wipe_free(out, cap);
        return rc;
    }
    *conninfo = out;
    return IOT_OK;
}

void iot_pg_url_free(char *conninfo)
{
    if (conninfo)
        wipe_free(conninfo, strlen(conninfo));
}

/* The value of `keyword` in parsed options, or NULL. */
static const char *option(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && o->val[0] ? o->val : NULL;
    return NULL;
}

void iot_pg_url_describe(const char *conninfo, char *out, size_t size)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char *host = option(opts, "host");
    const char *port = option(opts, "port");
    const char *user = option(opts, "user");
    const char *db = option(opts, "dbname");
    snprintf(out, size, "%s@%s:%s/%s", user ? user : "-", host ? host : "-", port ? port : "-",
             db ? db : "-");
    PQconninfoFree(opts);
}

/* The password as written in the URL's userinfo ("user:pw@"), which may be
 * percent-encoded, copied into buf; "" if none. */
static void raw_url_password(const char *conninfo, char *buf, size_t size)
{
    buf[0] = '\0';
    const char *p = strstr(conninfo, "://");
    if (!p)
        return;
    p += 3;
    size_t userinfo = strcspn(p, "@/");
    if (p[userinfo] != '@')
        return;
    const char *colon = memchr(p, ':', userinfo);
    if (!colon)
        return;
    size_t n = (size_t)(p + userinfo - colon - 1);
    if (n >= size)
        n = size - 1;
    memcpy(buf, colon + 1, n);
    buf[n] = '\0';
}

/* Replaces every occurrence of `secret` in buf (NUL-terminated, capacity
 * size) by "***". */
static void mask(char *buf, size_t size, const char *secret)
{
    size_t slen = strlen(secret);
    if (slen == 0)
        return;
    char tmp[1024];
    size_t n = 0;
    for (const char *p = buf; *p && n + 4 < sizeof tmp;) {
        if (strncmp(p, secret, slen) == 0) {
            memcpy(tmp + n, "***", 3);
            n += 3;
            p += slen;
        } else {
            tmp[n++] = *p++;
        }
    }
    tmp[n] = '\0';
    snprintf(buf, size, "%s", tmp);
    sodium_memzero(tmp, sizeof tmp);
}

void iot_pg_url_redact(const char *conninfo, const char *msg, char *out, size_t size)
{
    if (size == 0)
        return;
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n + 1 < size; p++) {
        char ch = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
        if (ch == ' ' && (n == 0 || out[n - 1] == ' '))
            continue; /* fold runs of white space */
        out[n++] = ch;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    char raw[256];
    raw_url_password(conninfo, raw, sizeof raw);
    mask(out, size, raw);
    sodium_memzero(raw, sizeof raw);
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char *pw = option(opts, "password");
    if (pw)
        mask(out, size, pw);
    PQconninfoFree(opts); /* libpq does not wipe it; nothing we can do */
}
