/* buf.h — a growable byte buffer for building response bodies by hand on
 * hot paths (splicing stored JSON without re-encoding it).
 *
 * Appends never fail loudly: on allocation failure the buffer is marked
 * failed, later appends are ignored, and iot_buf_take returns NULL. */
#ifndef IOT_UTIL_BUF_H
#define IOT_UTIL_BUF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct iot_buf {
    char *data;
    size_t len, cap;
    bool failed;
};

void iot_buf_append(struct iot_buf *b, const char *s, size_t n);
void iot_buf_puts(struct iot_buf *b, const char *s);
void iot_buf_printf(struct iot_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the compact JSON text of a value (reference not taken). */
void iot_buf_json(struct iot_buf *b, const json_t *v);
/* Hands over the NUL-terminated contents (caller frees) and resets b;
 * NULL if any append failed. */
char *iot_buf_take(struct iot_buf *b, size_t *len);
void iot_buf_free(struct iot_buf *b);

#endif
