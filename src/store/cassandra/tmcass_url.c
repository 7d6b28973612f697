/* tmcass_url.c — the Cassandra telemetry URL:
 *   cassandra://[user:pass@]host[:port][,host[:port]…]/keyspace
 *     [?replication=N&consistency=one|quorum|local_quorum|all&dc=NAME&timeout_ms=N]
 * User and password may be percent-encoded. Errors name the part that is
 * wrong, never the password. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/cassandra/tmcass_int.h"
#include "util/err.h"

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+n) into out (cap bytes, NUL-terminated). */
static bool decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || k + 1 >= cap)
            return false;
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return true;
}

static bool keyspace_ok(const char *ks)
{
    size_t n = strlen(ks);
    if (n == 0 || n > TMC_KEYSPACE_MAX || !isalpha((unsigned char)ks[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)ks[i]) && ks[i] != '_')
            return false;
    return true;
}

static bool hosts_ok(const char *h)
{
    if (!*h)
        return false;
    for (; *h; h++)
        if (!isalnum((unsigned char)*h) && !strchr(".-:,[]_", *h))
            return false;
    return true;
}

static const struct {
    const char *name;
    uint16_t value;
} consistencies[] = {
    {"one", CQL_CONSISTENCY_ONE},       {"two", CQL_CONSISTENCY_TWO},
    {"quorum", CQL_CONSISTENCY_QUORUM}, {"local_quorum", CQL_CONSISTENCY_LOCAL_QUORUM},
    {"all", CQL_CONSISTENCY_ALL},       {"local_one", CQL_CONSISTENCY_LOCAL_ONE},
};

static int parse_param(struct tmc_url *u, const char *key, size_t klen, const char *val,
                       size_t vlen, char *err, size_t err_size)
{
    char v[80];
    if (vlen >= sizeof v) {
        snprintf(err, err_size, "value of %.*s too long", (int)klen, key);
        return IOT_EINVAL;
    }
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    char *end;
    if (klen == 11 && strncmp(key, "replication", 11) == 0) {
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 20)
            return snprintf(err, err_size, "replication must be 1..20"), IOT_EINVAL;
        u->replication = (int)n;
        return IOT_OK;
    }
    if (klen == 11 && strncmp(key, "consistency", 11) == 0) {
        for (size_t i = 0; i < sizeof consistencies / sizeof *consistencies; i++)
            if (strcasecmp(v, consistencies[i].name) == 0)
                return u->consistency = consistencies[i].value, IOT_OK;
        snprintf(err, err_size, "consistency must be one, quorum, local_quorum or all");
        return IOT_EINVAL;
    }
    if (klen == 2 && strncmp(key, "dc", 2) == 0) {
        if (!vlen || vlen >= sizeof u->dc || strchr(v, '\'') || strchr(v, '"'))
            return snprintf(err, err_size, "dc is not a data centre name"), IOT_EINVAL;
        memcpy(u->dc, v, vlen + 1);
        return IOT_OK;
    }
    if (klen == 10 && strncmp(key, "timeout_ms", 10) == 0) {
        long n = strtol(v, &end, 10);
        /* Bounded well below the merger's age threshold (tmcass_agg.c). */
        if (*end || n < 100 || n > 30000)
            return snprintf(err, err_size, "timeout_ms must be 100..30000"), IOT_EINVAL;
        u->timeout_ms = (uint32_t)n;
        return IOT_OK;
    }
    snprintf(err, err_size, "unknown parameter %.*s", (int)(klen > 40 ? 40 : klen), key);
    return IOT_EINVAL;
}

static int parse_query(struct tmc_url *u, const char *q, char *err, size_t err_size)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        if (!eq)
            return snprintf(err, err_size, "parameter without a value"), IOT_EINVAL;
        int rc = parse_param(u, q, (size_t)(eq - q), eq + 1, len - (size_t)(eq - q) - 1, err,
                             err_size);
        if (rc)
            return rc;
        q += len + (amp ? 1 : 0);
    }
    return IOT_OK;
}

static int parse_auth(struct tmc_url *u, const char *s, size_t n, char *err, size_t err_size)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (!decode(s, ulen, u->user, sizeof u->user) || !u->user[0])
        return snprintf(err, err_size, "bad user name"), IOT_EINVAL;
    if (colon && !decode(colon + 1, n - ulen - 1, u->password, sizeof u->password))
        return snprintf(err, err_size, "bad password encoding"), IOT_EINVAL;
    return IOT_OK;
}

int tmc_url_parse(const char *url, struct tmc_url *u, char *err, size_t err_size)
{
    memset(u, 0, sizeof *u);
    u->replication = 1;
    u->timeout_ms = 12000;
    const char *p = url;
    if (!p || strncasecmp(p, "cassandra://", 12) != 0)
        return snprintf(err, err_size, "not a cassandra:// URL"), IOT_EINVAL;
    p += 12;
    const char *slash = strchr(p, '/');
    if (!slash)
        return snprintf(err, err_size, "no keyspace (cassandra://host/keyspace)"), IOT_EINVAL;
    const char *at = memchr(p, '@', (size_t)(slash - p));
    if (at) {
        int rc = parse_auth(u, p, (size_t)(at - p), err, err_size);
        if (rc)
            return rc;
        p = at + 1;
    }
    size_t hlen = (size_t)(slash - p);
    if (hlen >= sizeof u->hosts)
        return snprintf(err, err_size, "host list too long"), IOT_EINVAL;
    memcpy(u->hosts, p, hlen);
    u->hosts[hlen] = '\0';
    if (!hosts_ok(u->hosts))
        return snprintf(err, err_size, "bad host list"), IOT_EINVAL;
    const char *ks = slash + 1, *q = strchr(ks, '?');
    size_t klen = q ? (size_t)(q - ks) : strlen(ks);
    if (klen > TMC_KEYSPACE_MAX)
        return snprintf(err, err_size, "keyspace name too long"), IOT_EINVAL;
    memcpy(u->keyspace, ks, klen);
    u->keyspace[klen] = '\0';
    if (!keyspace_ok(u->keyspace))
        return snprintf(err, err_size, "keyspace must be [A-Za-z][A-Za-z0-9_]{0,47}"), IOT_EINVAL;
    /* Lower case: Cassandra folds unquoted names, and we quote ours. */
    for (char *c = u->keyspace; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    int rc = q ? parse_query(u, q + 1, err, err_size) : IOT_OK;
    if (rc == IOT_OK && !u->consistency)
        u->consistency = u->replication >= 3 ? CQL_CONSISTENCY_QUORUM : CQL_CONSISTENCY_ONE;
    return rc;
}
