/* utf8.h — the one UTF-8 decoder and the one list of code points that must
 * not pass unseen: the log escaper (log.c), the account rules
 * (account_rules.c) and the error-message scrubber (request.c) all ask
 * here, so they can never disagree on what is dangerous.
 *
 * Pure functions over pointer + length (no NUL needed), no state, any
 * thread. */
#ifndef IOT_UTIL_UTF8_H
#define IOT_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the UTF-8 sequence at s[*i] (i < len) into *cp and advances *i;
 * false, *i unchanged, when the bytes there are not one: a stray
 * continuation byte, an overlong form, a UTF-16 surrogate, a code point
 * above U+10FFFF, or a sequence cut short by len. */
bool iot_utf8_next(const char *s, size_t len, size_t *i, uint32_t *cp);

/* Control, invisible and format code points: C0, DEL and C1 controls, and
 * those that render as nothing (zero-width spaces and joiners, soft
 * hyphen, fillers, variation selectors, tags, BOM), that reorder the text
 * around them (bidi marks, embeddings, overrides, isolates, U+061C) or that
 * start a new line to some readers (U+2028, U+2029). Two names differing
 * only by these look the same; in a log line they hide or reorder what an
 * operator reads. */
bool iot_codepoint_invisible(uint32_t cp);

/* Unicode spaces: U+0020, U+00A0, U+1680, U+2000..U+200A, U+202F, U+205F,
 * U+3000, and ASCII tab/newline/CR/VT/FF. */
bool iot_codepoint_space(uint32_t cp);

#endif
