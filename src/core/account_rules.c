/* account_rules.c — username, email and password rules (account_rules.h).
 *
 * Why these rules: a name is how people tell accounts apart, so two names
 * that render the same must not both exist. Case is folded by the registry
 * (a unique index on the lower-cased value); what folding cannot catch —
 * characters that render as nothing (zero-width spaces, joiners, BOM),
 * that reorder the text around them (bidirectional controls) or that look
 * like a plain space — is refused here. Emails only have to look like an
 * address: nothing is sent to them, and other text round-trips byte-exact
 * (quotes, backslashes, SQL-looking strings are data, never syntax). */
#include "core/account_rules.h"

#include <string.h>

#include "util/utf8.h"

/* What a scan of the text found. */
struct scan {
    bool malformed, invisible, space, odd_space, only_blank;
};

static struct scan scan_text(const char *s, size_t len)
{
    struct scan sc = {.only_blank = true};
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (!iot_utf8_next(s, len, &i, &cp)) {
            sc.malformed = true;
            return sc;
        }
        bool space = iot_codepoint_space(cp);
        /* tab, newline etc. count as controls, not as spaces */
        bool invisible = iot_codepoint_invisible(cp) && !(space && cp >= 0x20);
        sc.invisible |= invisible;
        sc.space |= space;
        sc.odd_space |= space && cp != 0x20;
        sc.only_blank &= space || invisible;
    }
    return sc;
}

#define NO_INVISIBLE                                                                           \
    " must not contain control or invisible characters (zero-width spaces and joiners,"      \
    " bidirectional controls, byte order marks, ...)"

const char *iot_username_problem(const char *s, size_t len)
{
    struct scan sc = scan_text(s, len);
    if (sc.malformed)
        return "'username' is not valid UTF-8";
    if (sc.invisible)
        return "'username'" NO_INVISIBLE;
    if (sc.odd_space)
        return "'username' must not contain spaces other than the plain space (U+0020)";
    if (len == 0 || s[0] == ' ' || s[len - 1] == ' ')
        return "'username' must not begin or end with a space";
    return NULL;
}

/* The domain after the @: labels separated by dots, none empty, two or
 * more. */
static bool domain_ok(const char *d, size_t len)
{
    size_t labels = 0, label_len = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || d[i] == '.') {
            if (label_len == 0)
                return false;
            labels++;
            label_len = 0;
        } else {
            label_len++;
        }
    }
    return labels >= 2;
}

const char *iot_email_problem(const char *s, size_t len)
{
    struct scan sc = scan_text(s, len);
    if (sc.malformed)
        return "'email' is not valid UTF-8";
    if (sc.invisible)
        return "'email'" NO_INVISIBLE;
    if (sc.space)
        return "'email' must not contain spaces";
    const char *at = memchr(s, '@', len);
    if (!at || memchr(at + 1, '@', len - (size_t)(at + 1 - s)))
        return "'email' must contain exactly one '@'";
    size_t local = (size_t)(at - s);
    if (local == 0 || local > IOT_EMAIL_LOCAL_MAX)
        return "'email' must have 1 to 64 bytes before the '@'";
    if (!domain_ok(at + 1, len - local - 1))
        return "'email' must have a domain such as example.com after the '@'";
    return NULL;
}

const char *iot_password_problem(const char *s, size_t len)
{
    struct scan sc = scan_text(s, len);
    if (sc.malformed)
        return "'password' is not valid UTF-8";
    if (sc.only_blank)
        return "'password' must not be only spaces or invisible characters";
    return NULL;
}
