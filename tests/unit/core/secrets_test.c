/* Unit tests of core/secrets: passwords, keys, tokens, hashes, compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/secrets.h"
#include "store/registry.h"
#include "util/err.h"

static int setup(void **state) { return iot_secrets_init(); }

static void password_round_trip(void **state)
{
    char hash[IOT_PWHASH_MAX + 1];
    assert_int_equal(iot_password_hash("correct horse", hash, sizeof hash), IOT_OK);
    assert_true(strncmp(hash, "$argon2id$", 10) == 0);
    assert_true(iot_password_verify(hash, "correct horse"));
    assert_false(iot_password_verify(hash, "correct horsE"));
    assert_false(iot_password_verify(hash, ""));
    assert_false(iot_password_verify("not a hash", "correct horse"));
    char again[IOT_PWHASH_MAX + 1];
    iot_password_hash("correct horse", again, sizeof again);
    assert_string_not_equal(hash, again); /* salted */
}

static void api_keys_are_32_alnum_and_distinct(void **state)
{
    char a[IOT_API_KEY_LEN + 1], b[IOT_API_KEY_LEN + 1];
    iot_api_key_new(a, sizeof a);
    iot_api_key_new(b, sizeof b);
    assert_int_equal(strlen(a), IOT_API_KEY_LEN);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                     IOT_API_KEY_LEN);
    assert_string_not_equal(a, b);
}

static void tokens_are_urlsafe(void **state)
{
    char t[IOT_TOKEN_LEN + 1];
    iot_token_new(t, sizeof t);
    assert_int_equal(strlen(t), IOT_TOKEN_LEN);
    assert_int_equal(strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     IOT_TOKEN_LEN);
}

static void sha256_known_vector(void **state)
{
    char hex[IOT_SHA256_HEX_LEN + 1];
    iot_sha256_hex("abc", 3, hex, sizeof hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void random_hex_has_length(void **state)
{
    char id[IOT_USER_ID_LEN + 1];
    iot_random_hex(id, IOT_USER_ID_LEN);
    assert_int_equal(strlen(id), IOT_USER_ID_LEN);
    assert_int_equal(strspn(id, "0123456789abcdef"), IOT_USER_ID_LEN);
}

static void secret_equal(void **state)
{
    assert_true(iot_secret_equal("s3cret", "s3cret"));
    assert_false(iot_secret_equal("s3cret", "s3creT"));
    assert_false(iot_secret_equal("s3cret", "s3cret "));
    assert_false(iot_secret_equal("", "x"));
    assert_true(iot_secret_equal("", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(password_round_trip),
        cmocka_unit_test(api_keys_are_32_alnum_and_distinct),
        cmocka_unit_test(tokens_are_urlsafe),
        cmocka_unit_test(sha256_known_vector),
        cmocka_unit_test(random_hex_has_length),
        cmocka_unit_test(secret_equal),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
