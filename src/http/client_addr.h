/* client_addr.h — who the client is: the TCP peer, or, behind trusted
 * reverse proxies, the address they forwarded in X-Forwarded-For.
 *
 * A proxy list is parsed once at start-up and read-only afterwards (any
 * thread may use it). Selection allocates nothing: it runs per request. */
#ifndef IOT_HTTP_CLIENT_ADDR_H
#define IOT_HTTP_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* An IPv4 address is kept as IPv4 (an IPv4-mapped IPv6 peer, ::ffff:a.b.c.d,
 * is turned into it), so one rule "10.0.0.0/8" matches both forms. */
struct iot_ip {
    int family; /* AF_INET or AF_INET6 */
    unsigned char bytes[16];
};

struct iot_ip_net {
    struct iot_ip ip;
    unsigned prefix; /* bits */
};

struct iot_trusted_proxies {
    struct iot_ip_net *nets;
    size_t n;
};

/* Parses "10.0.0.1, 192.168.0.0/16, ::1, fd00::/8" (empty = none). On a bad
 * entry returns IOT_EINVAL and writes it to bad (bad_size bytes). Free with
 * iot_trusted_proxies_free (also after a failure). */
int iot_trusted_proxies_parse(const char *list, struct iot_trusted_proxies *out, char *bad,
                              size_t bad_size);
void iot_trusted_proxies_free(struct iot_trusted_proxies *t);

/* Parses one address (no brackets, no port). */
bool iot_ip_parse(const char *s, size_t len, struct iot_ip *out);
bool iot_ip_from_sockaddr(const struct sockaddr *sa, struct iot_ip *out);
bool iot_trusted_proxies_contains(const struct iot_trusted_proxies *t, const struct iot_ip *ip);

/* The client address as text in out: the peer itself, unless the peer is a
 * trusted proxy; then the right-most X-Forwarded-For entry that is not a
 * trusted proxy (all trusted: the left-most). An entry that is not an
 * address ends the walk: the last good address seen is used, because
 * nothing left of a broken entry can be trusted. xff may be NULL. */
void iot_client_addr_select(const struct iot_trusted_proxies *t, const struct iot_ip *peer,
                            const char *xff, char *out, size_t size);
void iot_ip_format(const struct iot_ip *ip, char *out, size_t size);

#endif
