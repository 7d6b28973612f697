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

/* Who the client is, for a request. */
struct iot_client_id {
    char ip[64];  /* the full address, for logs (or "xff:<text>", below) */
    char key[64]; /* what per-client limits count: iot_ip_bucket_format */
};

/* Most X-Forwarded-For header lines looked at: the right-most ones, which
 * the nearest proxies wrote (server.c keeps those). */
#define IOT_XFF_MAX_LINES 16

/* The client address in out: the peer itself, unless the peer is a
 * trusted proxy; then the right-most X-Forwarded-For entry that is not a
 * trusted proxy (all trusted: the left-most). xff holds the header's lines
 * in the order received (n_xff may be 0): they are one comma-separated
 * list (RFC 9110 5.3). Empty elements are skipped; an entry may be quoted,
 * bracketed ("[v6]") and carry a port ("a.b.c.d:80", "[v6]:443").
 *
 * An entry reached in the walk that is still not an address ("unknown",
 * junk) is written there by a trusted proxy (one not appending would make
 * every entry the client's anyway), so it names the client as well as that
 * proxy can: its text becomes the client, "xff:<text>" (anything but
 * [0-9A-Za-z.:_-] as '_'), as ip and as key. Neither the proxy's own address, which would
 * put every client behind it in one rate-limit bucket, nor an address
 * further left, which the client wrote. */
void iot_client_addr_select(const struct iot_trusted_proxies *t, const struct iot_ip *peer,
                            const char *const *xff, size_t n_xff, struct iot_client_id *out);
void iot_ip_format(const struct iot_ip *ip, char *out, size_t size);

/* What per-client limits count (rate limits, the per-address connection
 * cap): an IPv4 address as is, an IPv6 address by its /64 — the smallest
 * network a site is given, so one host holds a whole /64 and could
 * otherwise spend a new address per guess or per connection. An
 * IPv4-mapped address is IPv4 (struct iot_ip never holds one). */
void iot_ip_bucket(const struct iot_ip *ip, struct iot_ip *out);
/* The bucket as text: "192.0.2.1", "2001:db8:1:2::/64". */
void iot_ip_bucket_format(const struct iot_ip *ip, char *out, size_t size);

#endif
