#include "core/secrets.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

int iot_secrets_init(void) { return sodium_init() < 0 ? IOT_EINTERNAL : IOT_OK; }

int iot_password_hash(const char *password, char *out, size_t out_size)
{
    size_t len = strlen(password);
    if (out_size < crypto_pwhash_STRBYTES || len > IOT_PASSWORD_MAX)
        return IOT_EINVAL;
    /* Interactive limits: ~64 MiB and a few tens of ms per hash, OWASP's
     * recommended floor for Argon2id. */
    if (crypto_pwhash_str_alg(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13))
        return IOT_ENOMEM;
    return IOT_OK;
}

bool iot_password_verify(const char *hash, const char *password)
{
    size_t len = strlen(password);
    if (len > IOT_PASSWORD_MAX || strlen(hash) >= crypto_pwhash_STRBYTES)
        return false;
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

void iot_api_key_new(char *out, size_t out_size)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = out_size - 1 < IOT_API_KEY_LEN ? out_size - 1 : IOT_API_KEY_LEN;
    /* randombytes_uniform is unbiased: every character carries log2(62) bits. */
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    out[n] = '\0';
}

void iot_token_new(char *out, size_t out_size)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, out_size, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void iot_sha256_hex(const void *data, size_t len, char *out, size_t out_size)
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    sodium_bin2hex(out, out_size, digest, sizeof digest);
}

void iot_random_hex(char *out, size_t n)
{
    unsigned char raw[64];
    size_t bytes = (n + 1) / 2;
    if (bytes > sizeof raw)
        bytes = sizeof raw;
    randombytes_buf(raw, bytes);
    char hex[sizeof raw * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, raw, bytes);
    memcpy(out, hex, n);
    out[n] = '\0';
}

bool iot_secret_equal(const char *a, const char *b)
{
    /* Hash both sides first so the comparison time depends on neither
     * content nor length of the secret. */
    unsigned char da[crypto_hash_sha256_BYTES], db[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(da, (const unsigned char *)a, strlen(a));
    crypto_hash_sha256(db, (const unsigned char *)b, strlen(b));
    return sodium_memcmp(da, db, sizeof da) == 0;
}
