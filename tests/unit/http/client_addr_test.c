/* Unit tests of http/client_addr: the trusted-proxy list and which
 * X-Forwarded-For entry becomes the client address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http/client_addr.h"
#include "util/err.h"

static struct iot_trusted_proxies proxies;

static int setup(void **state)
{
    char bad[64];
    return iot_trusted_proxies_parse(" 10.0.0.1, 192.168.0.0/16,::1 , fd00::/8,172.16.0.0/12",
                                     &proxies, bad, sizeof bad);
}

static int teardown(void **state)
{
    iot_trusted_proxies_free(&proxies);
    return 0;
}

static struct iot_ip ip(const char *s)
{
    struct iot_ip out;
    assert_true(iot_ip_parse(s, strlen(s), &out));
    return out;
}

static struct iot_client_id last; /* of the latest client_lines */

static const char *client_lines(const char *peer, const char *const *lines, size_t n)
{
    struct iot_ip p = ip(peer);
    iot_client_addr_select(&proxies, &p, lines, n, &last);
    return last.ip;
}

/* One X-Forwarded-For line (NULL: none). */
static const char *client(const char *peer, const char *xff)
{
    return client_lines(peer, &xff, xff != NULL);
}
#define LINES(...) (const char *const[]){__VA_ARGS__}
#define N_LINES(...) (sizeof LINES(__VA_ARGS__) / sizeof(const char *))
#define CLIENT_LINES(peer, ...) client_lines(peer, LINES(__VA_ARGS__), N_LINES(__VA_ARGS__))

static void parses_addresses_and_networks(void **state)
{
    assert_int_equal(proxies.n, 5);
    struct iot_ip a = ip("10.0.0.1"), b = ip("192.168.77.3"), c = ip("fd12::9"),
                  d = ip("::ffff:192.168.1.1"), e = ip("10.0.0.2"), f = ip("172.32.0.1"),
                  g = ip("::1"), h = ip("172.31.255.255");
    assert_true(iot_trusted_proxies_contains(&proxies, &a));
    assert_true(iot_trusted_proxies_contains(&proxies, &b));
    assert_true(iot_trusted_proxies_contains(&proxies, &c));
    assert_true(iot_trusted_proxies_contains(&proxies, &d)); /* mapped v4 is v4 */
    assert_false(iot_trusted_proxies_contains(&proxies, &e));
    assert_false(iot_trusted_proxies_contains(&proxies, &f));
    assert_true(iot_trusted_proxies_contains(&proxies, &g));
    assert_true(iot_trusted_proxies_contains(&proxies, &h));
}

static void rejects_bad_entries(void **state)
{
    const char *bad_lists[] = {"10.0.0.1,nonsense", "10.0.0.0/33", "::/129", "10.0.0.0/",
                               "10.0.0.0/8x", "10.0.0.256", "host.example"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof *bad_lists; i++) {
        struct iot_trusted_proxies t;
        char bad[64] = "";
        assert_int_equal(iot_trusted_proxies_parse(bad_lists[i], &t, bad, sizeof bad),
                         IOT_EINVAL);
        assert_true(bad[0] != '\0');
        iot_trusted_proxies_free(&t);
    }
    struct iot_trusted_proxies none;
    char bad[8];
    assert_int_equal(iot_trusted_proxies_parse("", &none, bad, sizeof bad), IOT_OK);
    assert_int_equal(none.n, 0);
    iot_trusted_proxies_free(&none);
}

static void untrusted_peer_ignores_the_header(void **state)
{
    assert_string_equal(client("203.0.113.9", "1.2.3.4"), "203.0.113.9");
    assert_string_equal(client("203.0.113.9", NULL), "203.0.113.9");
    assert_string_equal(client("2001:db8::1", "1.2.3.4"), "2001:db8::1");
}

static void trusted_peer_takes_rightmost_untrusted(void **state)
{
    assert_string_equal(client("10.0.0.1", "1.2.3.4"), "1.2.3.4");
    /* The client forged the left entries; the proxies appended the right. */
    assert_string_equal(client("10.0.0.1", "6.6.6.6, 1.2.3.4, 192.168.0.7"), "1.2.3.4");
    assert_string_equal(client("::1", "2001:db8::5 , fd00::1"), "2001:db8::5");
    assert_string_equal(client("::ffff:10.0.0.1", "[2001:db8::7]"), "2001:db8::7");
    /* Every hop trusted: the left-most one is as far as we can see. */
    assert_string_equal(client("10.0.0.1", "192.168.1.1, 10.0.0.1"), "192.168.1.1");
    /* No header, or an empty one: the proxy itself. */
    assert_string_equal(client("10.0.0.1", NULL), "10.0.0.1");
    assert_string_equal(client("10.0.0.1", ""), "10.0.0.1");
}

/* An entry reached that is not an address was written by a trusted proxy:
 * its text names the client, never the proxy (one bucket for everyone
 * behind it) nor what the client wrote further left. */
static void unparsable_entry_is_an_opaque_client(void **state)
{
    assert_string_equal(client("10.0.0.1", "1.2.3.4, not-an-ip"), "xff:not-an-ip");
    assert_string_equal(client("10.0.0.1", "1.2.3.4, unknown, 192.168.0.9"), "xff:unknown");
    assert_string_equal(client("10.0.0.1", "1.2.3.4\n5.6.7.8"), "xff:1.2.3.4_5.6.7.8");
    assert_string_equal(client("10.0.0.1", "5.6.7.8, a b;c=\"d\""), "xff:a_b_c__d_");
    assert_string_equal(client("10.0.0.1", "1.1.1.1:99999"), "xff:1.1.1.1:99999");
    assert_string_equal(client("10.0.0.1", "[2001:db8::1"), "xff:_2001:db8::1");
    assert_string_equal(client("10.0.0.1", "[1.2.3.4]"), "xff:_1.2.3.4_"); /* v4 in brackets */
    /* Cut to fit, and never the proxy itself. */
    char many[200];
    memset(many, 'a', sizeof many - 1);
    many[sizeof many - 1] = '\0';
    const char *got = client("10.0.0.1", many);
    assert_int_equal(strlen(got), 63);
    assert_memory_equal(got, "xff:aaaa", 8);
}

/* Empty list elements are ignored (RFC 9110 5.6.1). */
static void empty_elements_are_skipped(void **state)
{
    assert_string_equal(client("10.0.0.1", "1.2.3.4,,"), "1.2.3.4");
    assert_string_equal(client("10.0.0.1", " , 1.2.3.4 , ,10.0.0.1"), "1.2.3.4");
    assert_string_equal(client("10.0.0.1", ", ,"), "10.0.0.1");
}

/* Repeated header lines are one list, in order (RFC 9110 5.3). */
static void repeated_lines_are_one_list(void **state)
{
    assert_string_equal(CLIENT_LINES("10.0.0.1", "9.9.9.9", "10.0.0.2"), "10.0.0.2");
    assert_string_equal(CLIENT_LINES("10.0.0.1", "9.9.9.9", "192.168.0.2"), "9.9.9.9");
    assert_string_equal(CLIENT_LINES("10.0.0.1", "9.9.9.9", "8.8.8.8"), "8.8.8.8");
    assert_string_equal(CLIENT_LINES("10.0.0.1", "6.6.6.6, 9.9.9.9", "192.168.0.2, 10.0.0.1"),
                        "9.9.9.9");
    assert_string_equal(CLIENT_LINES("10.0.0.1", "9.9.9.9", "", "192.168.0.2"), "9.9.9.9");
    assert_string_equal(CLIENT_LINES("10.0.0.1", "192.168.0.3", "192.168.0.2"), "192.168.0.3");
}

/* Ports, brackets and quotes as proxies write them. */
static void ports_brackets_and_quotes(void **state)
{
    assert_string_equal(client("10.0.0.1", "1.1.1.4:80"), "1.1.1.4");
    assert_string_equal(client("10.0.0.1", "[2001:db8::1]:443"), "2001:db8::1");
    assert_string_equal(client("10.0.0.1", "[2001:db8::1]"), "2001:db8::1");
    assert_string_equal(client("10.0.0.1", "\"[2001:db8::1]:443\""), "2001:db8::1");
    assert_string_equal(client("10.0.0.1", "\"1.1.1.4\""), "1.1.1.4");
    assert_string_equal(client("10.0.0.1", "2001:db8::1"), "2001:db8::1");
    assert_string_equal(client("10.0.0.1", "::ffff:1.1.1.4"), "1.1.1.4");
    assert_string_equal(client("10.0.0.1", "  1.1.1.6  ,192.168.0.2:8080 "), "1.1.1.6");
}

static const char *bucket(const char *addr)
{
    static char out[64];
    struct iot_ip a = ip(addr);
    iot_ip_bucket_format(&a, out, sizeof out);
    return out;
}

/* Limits count an IPv6 client by its /64; IPv4 (mapped too) as is. */
static void ipv6_clients_are_counted_by_their_64(void **state)
{
    assert_string_equal(bucket("192.0.2.1"), "192.0.2.1");
    assert_string_equal(bucket("::ffff:192.0.2.1"), "192.0.2.1");
    assert_string_equal(bucket("2001:db8:1:2:a:b:c:d"), "2001:db8:1:2::/64");
    assert_string_equal(bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    assert_string_equal(bucket("2001:db8:1:3::1"), "2001:db8:1:3::/64");
    assert_string_equal(bucket("::1"), "::/64");
    struct iot_ip a = ip("2001:db8::1"), b = ip("2001:db8::ffff:1"), na, nb;
    iot_ip_bucket(&a, &na);
    iot_ip_bucket(&b, &nb);
    assert_memory_equal(&na, &nb, sizeof na);
    /* The request keeps the full address for logs, the /64 as its key. */
    assert_string_equal(client("2001:db8:0:1::7", NULL), "2001:db8:0:1::7");
    assert_string_equal(last.key, "2001:db8:0:1::/64");
    assert_string_equal(client("10.0.0.1", "[2001:db8:0:2::9]:443"), "2001:db8:0:2::9");
    assert_string_equal(last.key, "2001:db8:0:2::/64");
    assert_string_equal(client("10.0.0.1", "203.0.113.5"), "203.0.113.5");
    assert_string_equal(last.key, "203.0.113.5");
    assert_string_equal(client("10.0.0.1", "unknown"), "xff:unknown");
    assert_string_equal(last.key, "xff:unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_addresses_and_networks),
        cmocka_unit_test(rejects_bad_entries),
        cmocka_unit_test(untrusted_peer_ignores_the_header),
        cmocka_unit_test(trusted_peer_takes_rightmost_untrusted),
        cmocka_unit_test(unparsable_entry_is_an_opaque_client),
        cmocka_unit_test(empty_elements_are_skipped),
        cmocka_unit_test(repeated_lines_are_one_list),
        cmocka_unit_test(ports_brackets_and_quotes),
        cmocka_unit_test(ipv6_clients_are_counted_by_their_64),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
