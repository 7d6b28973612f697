/* alerting_rule.h — an alert rule: what it watches (one device, a group, or
 * every device of its owner), the condition (measurement, operator,
 * threshold), what it raises (severity) and its timing (duration the
 * condition must hold, cooldown between alerts, auto-resolve).
 *
 * The rule's JSON is both its API view and its stored document body
 * (IOT_DOCS_RULES, k1 = name). Parsing validates every field and says what
 * is wrong in plain words; nothing here does I/O. Pure, thread-safe. */
#ifndef IOT_CORE_ALERTING_RULE_H
#define IOT_CORE_ALERTING_RULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/docs.h"
#include "store/telemetry.h"

#define IOT_ALERT_ID_LEN 32        /* rule and alert ids: random lowercase hex */
#define IOT_ALERT_RULE_NAME_CHARS 64 /* characters (code points) of a name */
#define IOT_ALERT_RULE_NAME_MAX (4 * IOT_ALERT_RULE_NAME_CHARS) /* its bytes at most */
#define IOT_ALERT_MESSAGE_CHARS 1024 /* characters of an alert's message */
#define IOT_ALERT_DURATION_MAX_S 86400.0      /* one day */
#define IOT_ALERT_COOLDOWN_MAX_S (30 * 86400.0) /* thirty days */

enum iot_alert_scope { IOT_ALERT_SCOPE_DEVICE, IOT_ALERT_SCOPE_GROUP, IOT_ALERT_SCOPE_ALL };
enum iot_alert_op { IOT_ALERT_GT, IOT_ALERT_GE, IOT_ALERT_LT, IOT_ALERT_LE, IOT_ALERT_EQ, IOT_ALERT_NE };
enum iot_alert_severity { IOT_ALERT_INFO, IOT_ALERT_WARNING, IOT_ALERT_ERROR, IOT_ALERT_CRITICAL };

struct iot_alert_rule {
    char id[IOT_ALERT_ID_LEN + 1];
    char name[IOT_ALERT_RULE_NAME_MAX + 1];
    enum iot_alert_scope scope;
    int64_t device_id; /* IOT_ALERT_SCOPE_DEVICE */
    int64_t group_id;  /* IOT_ALERT_SCOPE_GROUP */
    char measurement[IOT_TM_NAME_MAX + 1];
    enum iot_alert_op op;
    double threshold;
    enum iot_alert_severity severity;
    int64_t duration_ms;
    int64_t cooldown_ms;
    bool auto_resolve;
    bool enabled;
    int64_t created_at, updated_at;
};

/* Sets the defaults of a new rule: scope all, enabled, auto_resolve, no
 * duration or cooldown, everything else zero. */
void iot_alert_rule_defaults(struct iot_alert_rule *rule);

/* Reads the fields present in `obj` into *rule. With `create`, name,
 * measurement, operator, threshold and severity are required; otherwise
 * (an update) only what is present changes. The scope is device_id, or
 * group_id, or neither (all devices); both at once are refused; in an
 * update, sending either (null included) sets the scope anew. Unknown
 * fields are ignored. Returns IOT_OK, or IOT_EINVAL with the reason in
 * err. Leaves id and times alone. */
int iot_alert_rule_read(json_t *obj, bool create, struct iot_alert_rule *rule, char *err,
                        size_t err_size);

/* The rule as JSON (API view and stored body); NULL when out of memory. */
json_t *iot_alert_rule_json(const struct iot_alert_rule *rule);
/* The rule back from its stored body; IOT_EINVAL if it is not one. */
int iot_alert_rule_from_json(json_t *body, struct iot_alert_rule *rule);

/* Code points in len bytes of valid UTF-8 (what JSON Schema's maxLength
 * counts). */
size_t iot_alert_text_chars(const char *s, size_t len);
/* The rule's unique key in the documents store (k1): the name itself when
 * the store takes it as a key, else "#" and 40 hex of its SHA-256 (a name
 * past 64 bytes, or with characters keys refuse), so that every name a
 * user may choose stays unique per user. */
void iot_alert_rule_key(const char *name, char out[IOT_DOCS_KEY_MAX + 1]);


/* Whether `value` <op> `threshold` holds. */
bool iot_alert_op_holds(enum iot_alert_op op, double value, double threshold);
const char *iot_alert_op_name(enum iot_alert_op op);
bool iot_alert_op_parse(const char *s, enum iot_alert_op *out);
const char *iot_alert_severity_name(enum iot_alert_severity s);
bool iot_alert_severity_parse(const char *s, enum iot_alert_severity *out);

#endif
