/* Unit tests of http/conn_guard: the per-address cap, and the reaper
 * closing a socket whose header is overdue (a socketpair stands in for a
 * client connection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/client_addr.h"
#include "http/conn_guard.h"
#include "util/clock.h"
#include "util/err.h"

static int setup(void **state) { return sodium_init() < 0 ? -1 : 0; }

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}
#define SA(x) ((const struct sockaddr *)&(x))

static void cap_per_address(void **state)
{
    struct iot_trusted_proxies proxies;
    char bad[32];
    assert_int_equal(iot_trusted_proxies_parse("10.0.0.0/8", &proxies, bad, sizeof bad), IOT_OK);
    struct iot_conn_guard_config cfg = {.per_ip_cap = 2, .exempt = &proxies};
    struct iot_conn_guard *g = iot_conn_guard_new(&cfg);
    assert_non_null(g);
    struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2"), proxy = v4("10.1.1.1");
    struct iot_conn_track *ta[2], *tp[5];
    for (int i = 0; i < 2; i++) {
        assert_true(iot_conn_guard_admit(g, SA(a)));
        ta[i] = iot_conn_guard_track(g, -1, SA(a));
    }
    assert_false(iot_conn_guard_admit(g, SA(a)));
    assert_true(iot_conn_guard_admit(g, SA(b))); /* another client is not affected */
    for (int i = 0; i < 5; i++) {                /* a trusted proxy is not capped */
        assert_true(iot_conn_guard_admit(g, SA(proxy)));
        tp[i] = iot_conn_guard_track(g, -1, SA(proxy));
    }
    iot_conn_guard_untrack(g, ta[0]);
    assert_true(iot_conn_guard_admit(g, SA(a))); /* a closed connection frees its slot */
    iot_conn_guard_untrack(g, ta[1]);
    for (int i = 0; i < 5; i++)
        iot_conn_guard_untrack(g, tp[i]);
    iot_conn_guard_free(g);
    iot_trusted_proxies_free(&proxies);
}

static struct sockaddr_in6 v6(const char *ip)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
    inet_pton(AF_INET6, ip, &sa.sin6_addr);
    return sa;
}

/* One host may hold a whole /64: the cap counts the /64, not each address;
 * an IPv4-mapped peer counts with its IPv4 form. */
static void cap_per_ipv6_64(void **state)
{
    struct iot_trusted_proxies proxies;
    char bad[32];
    assert_int_equal(iot_trusted_proxies_parse("fd00::1", &proxies, bad, sizeof bad), IOT_OK);
    struct iot_conn_guard_config cfg = {.per_ip_cap = 2, .exempt = &proxies};
    struct iot_conn_guard *g = iot_conn_guard_new(&cfg);
    assert_non_null(g);
    struct sockaddr_in6 a1 = v6("2001:db8:0:1::1"), a2 = v6("2001:db8:0:1:ffff::2"),
                        a3 = v6("2001:db8:0:1::3"), other = v6("2001:db8:0:2::1"),
                        proxy = v6("fd00::1"), mapped = v6("::ffff:192.0.2.1");
    struct sockaddr_in plain = v4("192.0.2.1");
    struct iot_conn_track *t[7];
    assert_true(iot_conn_guard_admit(g, SA(a1)));
    t[0] = iot_conn_guard_track(g, -1, SA(a1));
    assert_true(iot_conn_guard_admit(g, SA(a2)));
    t[1] = iot_conn_guard_track(g, -1, SA(a2));
    assert_false(iot_conn_guard_admit(g, SA(a3))); /* a third address of the same /64 */
    assert_true(iot_conn_guard_admit(g, SA(other)));
    for (int i = 2; i < 5; i++) { /* a trusted proxy is not capped */
        assert_true(iot_conn_guard_admit(g, SA(proxy)));
        t[i] = iot_conn_guard_track(g, -1, SA(proxy));
    }
    t[5] = iot_conn_guard_track(g, -1, SA(mapped));
    t[6] = iot_conn_guard_track(g, -1, SA(plain));
    assert_false(iot_conn_guard_admit(g, SA(plain)));
    iot_conn_guard_untrack(g, t[1]);
    assert_true(iot_conn_guard_admit(g, SA(a3)));
    iot_conn_guard_untrack(g, t[0]);
    for (int i = 2; i < 7; i++)
        iot_conn_guard_untrack(g, t[i]);
    iot_conn_guard_free(g);
    iot_trusted_proxies_free(&proxies);
}

static void no_cap_admits_all(void **state)
{
    struct iot_conn_guard_config cfg = {0};
    struct iot_conn_guard *g = iot_conn_guard_new(&cfg);
    struct sockaddr_in a = v4("192.0.2.1");
    struct iot_conn_track *t[3];
    for (int i = 0; i < 3; i++) {
        assert_true(iot_conn_guard_admit(g, SA(a)));
        t[i] = iot_conn_guard_track(g, -1, SA(a));
    }
    for (int i = 0; i < 3; i++)
        iot_conn_guard_untrack(g, t[i]);
    iot_conn_guard_free(g);
}

/* Waits up to ms for the client end to see end-of-file; returns the
 * milliseconds it took, or -1. */
static int64_t ms_until_eof(int fd, int ms)
{
    int64_t start = iot_mono_us();
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, ms) > 0) {
        char c;
        if (read(fd, &c, 1) <= 0)
            return (iot_mono_us() - start) / 1000;
    }
    return -1;
}

static void reaper_closes_overdue_header(void **state)
{
    struct iot_conn_guard_config cfg = {.header_timeout = 1, .body_timeout = 1,
                                        .idle_timeout = 60};
    struct iot_conn_guard *g = iot_conn_guard_new(&cfg);
    int slow[2], handled[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, slow), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, handled), 0);
    struct iot_conn_track *ts = iot_conn_guard_track(g, slow[0], NULL);
    struct iot_conn_track *th = iot_conn_guard_track(g, handled[0], NULL);
    iot_conn_track_header_done(th, false, iot_mono_us()); /* being handled: no deadline */
    int64_t took = ms_until_eof(slow[1], 5000);
    assert_true(took >= 900 && took <= 3000);
    assert_int_equal(ms_until_eof(handled[1], 1500), -1);
    iot_conn_guard_untrack(g, ts);
    iot_conn_guard_untrack(g, th);
    iot_conn_guard_free(g);
    for (int i = 0; i < 2; i++) {
        close(slow[i]);
        close(handled[i]);
    }
}

/* Two worker threads may both admit an address's last place before either
 * connection is counted: counting refuses the second, shutting it down. */
static void admits_racing_for_the_last_place(void **state)
{
    struct iot_conn_guard_config cfg = {.per_ip_cap = 1};
    struct iot_conn_guard *g = iot_conn_guard_new(&cfg);
    assert_non_null(g);
    struct sockaddr_in a = v4("192.0.2.1");
    int first[2], second[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, first), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, second), 0);
    assert_true(iot_conn_guard_admit(g, SA(a)));
    assert_true(iot_conn_guard_admit(g, SA(a)));
    struct iot_conn_track *t1 = iot_conn_guard_track(g, first[0], SA(a));
    struct iot_conn_track *t2 = iot_conn_guard_track(g, second[0], SA(a));
    assert_true(ms_until_eof(second[1], 1000) >= 0);
    assert_int_equal(ms_until_eof(first[1], 300), -1);
    iot_conn_guard_untrack(g, t2); /* never counted: the place stays t1's */
    assert_false(iot_conn_guard_admit(g, SA(a)));
    iot_conn_guard_untrack(g, t1);
    assert_true(iot_conn_guard_admit(g, SA(a)));
    iot_conn_guard_free(g);
    for (int i = 0; i < 2; i++) {
        close(first[i]);
        close(second[i]);
    }
}

static void request_line_only_brings_the_deadline_closer(void **state)
{
    struct iot_conn_guard_config cfg = {.header_timeout = 1, .idle_timeout = 60};
    struct iot_conn_guard *g = iot_conn_guard_new(&cfg);
    int kept[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, kept), 0);
    struct iot_conn_track *t = iot_conn_guard_track(g, kept[0], NULL);
    iot_conn_track_header_done(t, false, iot_mono_us());
    iot_conn_track_request_done(t, iot_mono_us()); /* idle keep-alive: 61 s */
    assert_int_equal(ms_until_eof(kept[1], 1500), -1);
    iot_conn_track_request_line(t, iot_mono_us()); /* next request: 1 s */
    int64_t took = ms_until_eof(kept[1], 5000);
    assert_true(took >= 900 && took <= 3000);
    iot_conn_guard_untrack(g, t);
    iot_conn_guard_free(g);
    close(kept[0]);
    close(kept[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cap_per_address),
        cmocka_unit_test(cap_per_ipv6_64),
        cmocka_unit_test(no_cap_admits_all),
        cmocka_unit_test(reaper_closes_overdue_header),
        cmocka_unit_test(admits_racing_for_the_last_place),
        cmocka_unit_test(request_line_only_brings_the_deadline_closer),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
