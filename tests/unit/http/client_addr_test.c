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

static const char *client(const char *peer, const char *xff)
{
    static char out[64];
    struct iot_ip p = ip(peer);
    iot_client_addr_select(&proxies, &p, xff, out, sizeof out);
    return out;
}

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

static void garbage_entry_stops_the_walk(void **state)
{
    assert_string_equal(client("10.0.0.1", "1.2.3.4, not-an-ip"), "10.0.0.1");
    assert_string_equal(client("10.0.0.1", "1.2.3.4, unknown, 192.168.0.9"), "192.168.0.9");
    assert_string_equal(client("10.0.0.1", "1.2.3.4,,"), "10.0.0.1");
    assert_string_equal(client("10.0.0.1", "1.2.3.4\n5.6.7.8"), "10.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_addresses_and_networks),
        cmocka_unit_test(rejects_bad_entries),
        cmocka_unit_test(untrusted_peer_ignores_the_header),
        cmocka_unit_test(trusted_peer_takes_rightmost_untrusted),
        cmocka_unit_test(garbage_entry_stops_the_walk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
