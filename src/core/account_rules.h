/* account_rules.h — what a username, an email address and a password must
 * look like, checked on registration and on every change of an account.
 *
 * Pure functions over UTF-8 text (pointer + length, no NUL needed), no
 * state, callable from any thread. Each returns NULL when the value is
 * acceptable, else a static English sentence saying what is wrong with it,
 * fit for the "message" of a 400 answer. Lengths in bytes are checked by
 * the caller (views.h iot_field_text) before these run. */
#ifndef IOT_CORE_ACCOUNT_RULES_H
#define IOT_CORE_ACCOUNT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest local part (before the @) of an email address, RFC 5321. */
#define IOT_EMAIL_LOCAL_MAX 64

/* No control characters, no invisible or format characters (zero-width
 * spaces and joiners, bidirectional controls, BOM, ...) and no space
 * other than U+0020 anywhere; no space at either end. */
const char *iot_username_problem(const char *s, size_t len);
/* One @ with a non-empty local part of at most IOT_EMAIL_LOCAL_MAX bytes
 * before it and a domain of dot-separated non-empty labels (at least two)
 * after it; no whitespace, control or invisible characters. */
const char *iot_email_problem(const char *s, size_t len);
/* Not made only of whitespace and invisible characters. Anything else the
 * user types is theirs: strength beyond the minimum length is their
 * business. */
const char *iot_password_problem(const char *s, size_t len);

#endif
