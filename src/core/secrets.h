/* secrets.h — every secret iotflowd makes or checks: Argon2id password
 * hashes, device API keys (random, stored as SHA-256), session tokens
 * (random, stored as SHA-256) and constant-time comparison.
 *
 * Call iot_secrets_init() once before any other function (it initialises
 * libsodium); after that every function is thread-safe. */
#ifndef IOT_CORE_SECRETS_H
#define IOT_CORE_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#define IOT_API_KEY_LEN 32     /* characters of [A-Za-z0-9] */
#define IOT_TOKEN_LEN 43       /* base64url of 32 random bytes, no padding */
#define IOT_SHA256_HEX_LEN 64
#define IOT_PASSWORD_MAX 1024  /* bytes; longer passwords are refused */

int iot_secrets_init(void);

/* Argon2id hash of a password in libsodium's self-describing string form
 * (fits IOT_PWHASH_MAX). Returns 0, IOT_ENOMEM (the KDF could not get its
 * memory) or IOT_EINVAL. */
int iot_password_hash(const char *password, char *out, size_t out_size);
/* Constant-time with respect to the password; false for a malformed hash. */
bool iot_password_verify(const char *hash, const char *password);

/* A fresh random API key, NUL-terminated (out_size > IOT_API_KEY_LEN). */
void iot_api_key_new(char *out, size_t out_size);
/* A fresh random session token, NUL-terminated (out_size > IOT_TOKEN_LEN). */
void iot_token_new(char *out, size_t out_size);
/* Lowercase hex SHA-256 of len bytes (out_size > IOT_SHA256_HEX_LEN). */
void iot_sha256_hex(const void *data, size_t len, char *out, size_t out_size);
/* n random lowercase hex characters, NUL-terminated (out_size > n). */
void iot_random_hex(char *out, size_t n);

/* Compares two secrets in constant time (both are hashed first, so not even
 * the length leaks). */
bool iot_secret_equal(const char *a, const char *b);

#endif
