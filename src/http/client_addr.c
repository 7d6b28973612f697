#include "http/client_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/err.h"
#include "util/text.h"

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void set_v6(struct iot_ip *out, const unsigned char b[16])
{
    if (memcmp(b, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
        out->family = AF_INET;
        memset(out->bytes, 0, sizeof out->bytes);
        memcpy(out->bytes, b + 12, 4);
        return;
    }
    out->family = AF_INET6;
    memcpy(out->bytes, b, 16);
}

bool iot_ip_parse(const char *s, size_t len, struct iot_ip *out)
{
    char text[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    unsigned char b[16] = {0};
    if (inet_pton(AF_INET, text, b) == 1) {
        out->family = AF_INET;
        memcpy(out->bytes, b, sizeof out->bytes);
        return true;
    }
    if (inet_pton(AF_INET6, text, b) == 1) {
        set_v6(out, b);
        return true;
    }
    return false;
}

bool iot_ip_from_sockaddr(const struct sockaddr *sa, struct iot_ip *out)
{
    if (!sa)
        return false;
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        out->family = AF_INET;
        memcpy(out->bytes, &in4->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        set_v6(out, in6->sin6_addr.s6_addr);
        return true;
    }
    return false;
}

void iot_ip_format(const struct iot_ip *ip, char *out, size_t size)
{
    if (!inet_ntop(ip->family, ip->bytes, out, (socklen_t)size))
        snprintf(out, size, "unknown");
}

static bool in_net(const struct iot_ip_net *net, const struct iot_ip *ip)
{
    if (net->ip.family != ip->family)
        return false;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->ip.bytes, ip->bytes, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net->ip.bytes[full] & mask) == (ip->bytes[full] & mask);
}

bool iot_trusted_proxies_contains(const struct iot_trusted_proxies *t, const struct iot_ip *ip)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (in_net(&t->nets[i], ip))
            return true;
    return false;
}

/* A TCP port: 1 to 5 digits, at most 65535. */
static bool port_ok(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

/* "a.b.c.d", "a.b.c.d/n", "v6", "v6/n". */
static bool parse_net(const char *s, size_t len, struct iot_ip_net *out)
{
    const char *slash = memchr(s, '/', len);
    size_t addr_len = slash ? (size_t)(slash - s) : len;
    if (!iot_ip_parse(s, addr_len, &out->ip))
        return false;
    unsigned max = out->ip.family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (!slash)
        return true;
    /* A mapped v6 rule (::ffff:10.0.0.0/104) became v4: its prefix too. */
    bool mapped = out->ip.family == AF_INET && memchr(s, ':', addr_len);
    const char *digits = slash + 1;
    size_t n = len - addr_len - 1;
    if (n == 0 || n > 3)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        v = v * 10 + (unsigned)(digits[i] - '0');
    }
    if (mapped) {
        if (v < 96 || v > 128)
            return false;
        v -= 96;
    }
    if (v > max)
        return false;
    out->prefix = v;
    return true;
}

int iot_trusted_proxies_parse(const char *list, struct iot_trusted_proxies *out, char *bad,
                              size_t bad_size)
{
    out->nets = NULL;
    out->n = 0;
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    out->nets = calloc(cap, sizeof *out->nets);
    if (!out->nets)
        return IOT_ENOMEM;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        const char *item = iot_trim_ows(p, &len);
        if (len && !parse_net(item, len, &out->nets[out->n])) {
            snprintf(bad, bad_size, "%.*s", (int)len, item);
            return IOT_EINVAL;
        }
        out->n += len != 0;
        p += strcspn(p, ",");
        p += *p == ',';
    }
    return IOT_OK;
}

void iot_trusted_proxies_free(struct iot_trusted_proxies *t)
{
    if (!t)
        return;
    free(t->nets);
    t->nets = NULL;
    t->n = 0;
}

/* Parses one (trimmed) X-Forwarded-For entry. Strips a ":port" from
 * "a.b.c.d:port" or "[v6]:port" (what some proxies write), the brackets of
 * "[v6]", and the quotes of "\"...\"" (RFC 7239's quoted form, which some
 * proxies copy into this header). A bare v6 address keeps its colons:
 * only a v4 address or a bracket can carry a port. */
static bool parse_entry(const char *s, size_t len, struct iot_ip *out)
{
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
        s++, len -= 2;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return false;
        size_t after = len - (size_t)(close + 1 - s);
        if (after && (close[1] != ':' || !port_ok(close + 2, after - 1)))
            return false;
        return iot_ip_parse(s + 1, (size_t)(close - s - 1), out) && out->family == AF_INET6;
    }
    if (iot_ip_parse(s, len, out))
        return true;
    const char *colon = memchr(s, ':', len);
    if (!colon || memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) ||
        !port_ok(colon + 1, len - (size_t)(colon + 1 - s)))
        return false;
    return iot_ip_parse(s, (size_t)(colon - s), out) && out->family == AF_INET;
}

/* An entry that is not an address, as an opaque name: "xff:" and its text
 * with anything but [0-9A-Za-z.:_-] as '_', cut to fit. */
static void format_opaque(const char *s, size_t len, char *out, size_t size)
{
    size_t o = (size_t)snprintf(out, size, "xff:");
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        char c = s[i];
        bool plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '.' || c == ':' || c == '_' || c == '-';
        out[o++] = plain ? c : '_';
    }
    if (o < size)
        out[o] = '\0';
}

/* The X-Forwarded-For lines as one list (RFC 9110 5.3: repeated fields are
 * one comma-separated list, in order), walked from the right. */
struct xff_walk {
    const char *const *lines;
    size_t line; /* lines left to look at; the current one is line - 1 */
    size_t end;  /* the current line's unread length; SIZE_MAX: not measured */
};

/* The next entry to the left, trimmed; empty elements are skipped (RFC
 * 9110 5.6.1). False when none is left. */
static bool xff_prev(struct xff_walk *w, const char **entry, size_t *len)
{
    while (w->line > 0) {
        const char *text = w->lines[w->line - 1];
        if (w->end == SIZE_MAX)
            w->end = strlen(text);
        while (w->end > 0) {
            size_t start = w->end;
            while (start > 0 && text[start - 1] != ',')
                start--;
            size_t n = w->end - start;
            *entry = iot_trim_ows(text + start, &n);
            w->end = start ? start - 1 : 0;
            if (n) {
                *len = n;
                return true;
            }
        }
        w->line--;
        w->end = SIZE_MAX;
    }
    return false;
}

void iot_ip_bucket(const struct iot_ip *ip, struct iot_ip *out)
{
    *out = *ip;
    if (ip->family == AF_INET6)
        memset(out->bytes + 8, 0, 8);
}

void iot_ip_bucket_format(const struct iot_ip *ip, char *out, size_t size)
{
    struct iot_ip net;
    iot_ip_bucket(ip, &net);
    iot_ip_format(&net, out, size);
    if (net.family == AF_INET6) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "/64");
    }
}

static void client_id_set(struct iot_client_id *out, const struct iot_ip *ip)
{
    iot_ip_format(ip, out->ip, sizeof out->ip);
    iot_ip_bucket_format(ip, out->key, sizeof out->key);
}

void iot_client_addr_select(const struct iot_trusted_proxies *t, const struct iot_ip *peer,
                            const char *const *xff, size_t n_xff, struct iot_client_id *out)
{
    struct iot_ip chosen = *peer;
    if (n_xff && t && t->n && iot_trusted_proxies_contains(t, peer)) {
        /* Right to left: each hop was appended by the proxy after it. */
        struct xff_walk w = {xff, n_xff, SIZE_MAX};
        const char *entry;
        size_t len;
        while (xff_prev(&w, &entry, &len)) {
            struct iot_ip hop;
            if (!parse_entry(entry, len, &hop)) {
                format_opaque(entry, len, out->ip, sizeof out->ip);
                memcpy(out->key, out->ip, sizeof out->key);
                return;
            }
            chosen = hop;
            if (!iot_trusted_proxies_contains(t, &hop))
                break;
        }
    }
    client_id_set(out, &chosen);
}
