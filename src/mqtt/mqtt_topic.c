/* mqtt_topic.c — MQTT strings, topic names and filters, and matching
 * (§1.5.4, §4.7 of 5.0; §1.5.3, §4.7 of 3.1.1, which agree). */
#include <string.h>

#include "mqtt/mqtt_codec.h"
#include "util/utf8.h"

bool mqtt_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        if (!iot_utf8_next(s, len, &i, &cp) || cp == 0)
            return false;
    }
    return true;
}

bool mqtt_topic_name_valid(const char *s, size_t len)
{
    return len > 0 && len <= UINT16_MAX && !memchr(s, '+', len) && !memchr(s, '#', len) &&
           mqtt_utf8_valid(s, len);
}

/* Each level is either exactly "+", exactly "#" (and last), or free of
 * both: "sport+" and "sport/#/x" are invalid. */
bool mqtt_topic_filter_valid(const char *s, size_t len)
{
    if (len == 0 || len > UINT16_MAX || !mqtt_utf8_valid(s, len))
        return false;
    size_t start = 0;
    while (start <= len) {
        const char *slash = memchr(s + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - s) : len;
        size_t n = end - start;
        const char *level = s + start;
        bool wild = memchr(level, '+', n) || memchr(level, '#', n);
        if (wild && n != 1)
            return false;
        if (n == 1 && level[0] == '#' && end != len)
            return false;
        start = end + 1;
    }
    return true;
}

/* Length of the level starting at s (up to '/' or the end). */
static size_t level_len(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    return slash ? (size_t)(slash - s) : len;
}

bool mqtt_topic_matches(const char *filter, size_t filter_len, const char *topic,
                        size_t topic_len)
{
    /* §4.7.2: "#" or "+/..." must not match "$SYS/..." and the like. */
    if (filter_len > 0 && (filter[0] == '#' || filter[0] == '+') && topic_len > 0 &&
        topic[0] == '$')
        return false;
    size_t f = 0, t = 0;
    for (;;) {
        size_t fl = level_len(filter + f, filter_len - f);
        if (fl == 1 && filter[f] == '#')
            return true; /* the parent level too: "a/#" matches "a" */
        if (t > topic_len)
            /* The topic ended one level early: only "/#" can still match. */
            return filter_len - f == 1 && filter[f] == '#';
        size_t tl = level_len(topic + t, topic_len - t);
        if (!(fl == 1 && filter[f] == '+') && (fl != tl || memcmp(filter + f, topic + t, fl) != 0))
            return false;
        f += fl + 1;
        t += tl + 1;
        if (f > filter_len)
            return t > topic_len;
    }
}
