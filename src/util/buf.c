#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(struct iot_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void iot_buf_append(struct iot_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void iot_buf_puts(struct iot_buf *b, const char *s) { iot_buf_append(b, s, strlen(s)); }

void iot_buf_printf(struct iot_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void iot_buf_json(struct iot_buf *b, const json_t *v)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0 || !reserve(b, n)) {
        b->failed = true;
        return;
    }
    json_dumpb(v, b->data + b->len, n, JSON_COMPACT | JSON_ENCODE_ANY);
    b->len += n;
    b->data[b->len] = '\0';
}

char *iot_buf_take(struct iot_buf *b, size_t *len)
{
    char *data = b->failed ? NULL : b->data;
    if (!data)
        free(b->data);
    else if (len)
        *len = b->len;
    *b = (struct iot_buf){0};
    return data;
}

void iot_buf_free(struct iot_buf *b)
{
    free(b->data);
    *b = (struct iot_buf){0};
}
