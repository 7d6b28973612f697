/* text.h — small helpers over text given as pointer + length (no NUL
 * needed): pure functions, no state, any thread. UTF-8 lives in utf8.h. */
#ifndef IOT_UTIL_TEXT_H
#define IOT_UTIL_TEXT_H

#include <stddef.h>

/* Skips the spaces and tabs (HTTP's "optional white space") at both ends
 * of s[0..*len): returns where the text starts and sets *len to what is
 * left. Used for every comma-separated list in a header or a setting. */
static inline const char *iot_trim_ows(const char *s, size_t *len)
{
    while (*len && (*s == ' ' || *s == '\t'))
        s++, (*len)--;
    while (*len && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    return s;
}

#endif
