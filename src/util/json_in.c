/* json_in.c — JSON from clients (json_in.h). */
#include "util/json_in.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/json_bigint.h"

/* jansson accepts arbitrarily deep nesting; a client must not be able to
 * make us recurse without bound, so depth is checked before parsing. */
static bool json_depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > IOT_JSON_MAX_DEPTH)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

json_t *iot_json_parse(const char *text, size_t len, char *err, size_t err_size)
{
    if (len == 0) {
        snprintf(err, err_size, "the body must be JSON");
        return NULL;
    }
    if (!json_depth_ok(text, len)) {
        snprintf(err, err_size, "JSON nested deeper than %d levels", IOT_JSON_MAX_DEPTH);
        return NULL;
    }
    json_error_t jerr;
    /* JSON_REJECT_DUPLICATES: an object with two "name" keys is ambiguous.
     * No JSON_ALLOW_NUL: "\u0000" inside a string is refused. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && json_error_code(&jerr) == json_error_numeric_overflow) {
        /* An integer beyond int64 is valid JSON: read it as a real. */
        size_t wide_len;
        char *wide = iot_json_widen_bigints(text, len, &wide_len);
        if (wide) {
            root = json_loadb(wide, wide_len, JSON_REJECT_DUPLICATES, &jerr);
            free(wide);
        }
    }
    if (!root)
        snprintf(err, err_size, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
    return root;
}
