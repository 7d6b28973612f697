/* prefs.h — user preferences in the documents store (IOT_DOCS_PREFS): one
 * document per user, id "u<user_id>" (the registry id), the body the
 * preferences object as the user sent it (checked), ts_ms the update time.
 *
 * Known keys are checked, others kept as they are: "units" is "metric" or
 * "imperial", "timezone" an IANA-shaped zone name ("UTC", "Europe/Paris"),
 * "notifications" and "dashboard" objects. Reads lay the stored object
 * over the defaults. Pure logic on struct iot_docs, thread-safe as the
 * store is; json_t * results are new references owned by the caller. */
#ifndef IOT_CORE_PREFS_H
#define IOT_CORE_PREFS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/docs.h"

#define IOT_PREFS_MAX (16 * 1024)   /* bytes of the preferences' compact JSON */
#define IOT_PREFS_TIMEZONE_MAX 64   /* bytes of a time zone name */

/* "Area/Location[/Sub]" or a single word: parts of letters, digits, '_',
 * '+' and '-', each starting with a letter, at most three. */
bool iot_prefs_timezone_valid(const char *tz);

/* Checks a preferences object and gives its compact text (caller frees):
 * IOT_OK, IOT_EINVAL with the reason in why, IOT_ELIMIT past
 * IOT_PREFS_MAX, IOT_ENOMEM. */
int iot_prefs_check(const json_t *prefs, char **text, size_t *len, char *why, size_t why_size);

/* {"units":"metric","timezone":"UTC","notifications":{},"dashboard":{}} */
json_t *iot_prefs_defaults(void);

/* The user's preferences over the defaults; *updated_ms is 0 when the
 * user has stored none (the defaults alone, IOT_OK). */
int iot_prefs_load(struct iot_docs *d, int64_t user_id, json_t **prefs, int64_t *updated_ms);

/* Replaces the user's preferences with checked text (iot_prefs_check). */
int iot_prefs_store(struct iot_docs *d, int64_t user_id, const char *text, size_t len,
                    int64_t now_ms);

#endif
