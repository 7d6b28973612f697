/* utf8.c — the decoder and the code point lists (utf8.h). The invisible
 * list is the union of what the account rules refused and what the log
 * escaped before they shared it. */
#include "util/utf8.h"

struct range {
    uint32_t lo, hi;
};

/* Control, invisible and format code points (general category Cc, most of
 * Cf, and the fillers and selectors that render as nothing). */
static const struct range invisible_cps[] = {
    {0x0000, 0x001F},   /* C0 controls */
    {0x007F, 0x009F},   /* DEL, C1 controls */
    {0x00AD, 0x00AD},   /* soft hyphen */
    {0x034F, 0x034F},   /* combining grapheme joiner */
    {0x061C, 0x061C},   /* Arabic letter mark */
    {0x115F, 0x1160},   /* Hangul fillers */
    {0x17B4, 0x17B5},   /* Khmer inherent vowels */
    {0x180B, 0x180F},   /* Mongolian selectors, vowel separator */
    {0x200B, 0x200F},   /* zero-width space/non-joiner/joiner, LRM, RLM */
    {0x2028, 0x202E},   /* line/paragraph separators, bidi embeddings/overrides */
    {0x2060, 0x206F},   /* word joiner, invisible operators, bidi isolates, ... */
    {0x3164, 0x3164},   /* Hangul filler */
    {0xFE00, 0xFE0F},   /* variation selectors */
    {0xFEFF, 0xFEFF},   /* BOM / zero-width no-break space */
    {0xFFA0, 0xFFA0},   /* halfwidth Hangul filler */
    {0xFFF9, 0xFFFB},   /* interlinear annotation */
    {0x1BCA0, 0x1BCA3}, /* shorthand format controls */
    {0x1D173, 0x1D17A}, /* musical formatting */
    {0xE0000, 0xE0FFF}, /* tags, variation selectors supplement */
};

static const struct range space_cps[] = {
    {0x0009, 0x000D}, {0x0020, 0x0020}, {0x00A0, 0x00A0}, {0x1680, 0x1680},
    {0x2000, 0x200A}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

static bool in_ranges(uint32_t cp, const struct range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].lo && cp <= r[i].hi)
            return true;
    return false;
}

bool iot_codepoint_invisible(uint32_t cp)
{
    return in_ranges(cp, invisible_cps, sizeof invisible_cps / sizeof *invisible_cps);
}

bool iot_codepoint_space(uint32_t cp)
{
    return in_ranges(cp, space_cps, sizeof space_cps / sizeof *space_cps);
}

bool iot_utf8_next(const char *s, size_t len, size_t *i, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i;
    unsigned char c = p[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        *i += 1;
        return true;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return false;
    }
    if (left < n)
        return false;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0u) != 0x80u)
            return false;
        v = (v << 6) | (p[k] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return false;
    *cp = v;
    *i += n;
    return true;
}
