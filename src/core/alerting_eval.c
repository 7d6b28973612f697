/* alerting_eval.c — the alerting thread's memory: each user's rules, each
 * device's applicable rules with their state, and the evaluation of a
 * message against them (see alerting.h). Nothing here takes a lock: only
 * the alerting thread calls it. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alerting_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/json_out.h"
#include "util/log.h"

#define RULES_PER_USER_READ 2000 /* more than the API lets a user have */
#define GROUPS_PER_DEVICE_MAX 256
#define LOAD_RETRY_MS 5000

/* One rule on one device and what the engine remembers about the pair. */
struct rule_state {
    struct iot_alert_rule rule;
    bool has_since;
    int64_t since;      /* the condition holds since (message time) */
    int64_t last_ts;    /* newest message time evaluated: older ones are history */
    int64_t last_fired; /* message time of the last alert; 0: never */
    char open[IOT_ALERT_ID_LEN + 1]; /* its open alert; "" none */
};

struct device_rules {
    int64_t device_id, user_id;
    bool stale;
    int64_t refresh_at; /* monotonic ms */
    struct rule_state *rules;
    size_t n;
};

/* The enabled rules of one user. */
struct user_rules {
    struct iot_alert_rule *rules;
    size_t n;
    bool has_group_rules;
};

static int64_t mono_ms(void) { return iot_mono_us() / 1000; }

/* After a failed first load: the device has an empty rule set until
 * refresh_at, so that a store that is down costs one load (and one log
 * line) per device per retry period, not one per message. Best effort. */
static void remember_no_rules(struct iot_alerting *a, int64_t device_id, int64_t user_id,
                              int64_t refresh_at)
{
    struct device_rules *d = calloc(1, sizeof *d);
    struct iot_mtab_node *n = d ? iot_mtab_add(&a->devices, &device_id, sizeof device_id) : NULL;
    if (!n) {
        free(d);
        return;
    }
    *d = (struct device_rules){.device_id = device_id, .user_id = user_id,
                               .refresh_at = refresh_at};
    n->val.ptr = d;
}

static void free_device(void *ctx, struct iot_mtab_node *n)
{
    (void)ctx;
    struct device_rules *d = n->val.ptr;
    if (d)
        free(d->rules);
    free(d);
}

static void free_user(void *ctx, struct iot_mtab_node *n)
{
    (void)ctx;
    struct user_rules *u = n->val.ptr;
    if (u)
        free(u->rules);
    free(u);
}

void iot_alerting__init_tables(struct iot_alerting *a)
{
    unsigned char seed[IOT_MTAB_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    iot_mtab_init(&a->devices, seed);
    iot_mtab_init(&a->users, seed);
}

void iot_alerting__free_tables(struct iot_alerting *a)
{
    iot_mtab_clear(&a->devices, free_device, NULL);
    iot_mtab_clear(&a->users, free_user, NULL);
}

/* ---- invalidation ---------------------------------------------------------- */

static void mark_if_owner(void *ctx, const struct iot_mtab_node *n)
{
    struct device_rules *d = n->val.ptr;
    if (d->user_id == *(const int64_t *)ctx)
        d->stale = true;
}

void iot_alerting__user_stale(struct iot_alerting *a, int64_t user_id)
{
    struct iot_mtab_node *n = iot_mtab_find(&a->users, &user_id, sizeof user_id);
    if (n) {
        free_user(NULL, n);
        iot_mtab_remove(&a->users, n);
    }
    iot_mtab_foreach(&a->devices, mark_if_owner, &user_id);
}

void iot_alerting__device_stale(struct iot_alerting *a, int64_t device_id)
{
    struct iot_mtab_node *n = iot_mtab_find(&a->devices, &device_id, sizeof device_id);
    if (n)
        ((struct device_rules *)n->val.ptr)->stale = true;
}

void iot_alerting__device_gone(struct iot_alerting *a, int64_t device_id)
{
    struct iot_mtab_node *n = iot_mtab_find(&a->devices, &device_id, sizeof device_id);
    if (n) {
        free_device(NULL, n);
        iot_mtab_remove(&a->devices, n);
    }
}

/* ---- loading ------------------------------------------------------------------ */

struct rules_read {
    struct user_rules *u;
    size_t cap;
};

static int add_rule(void *ctx, const struct iot_doc *doc)
{
    struct rules_read *rr = ctx;
    json_t *body = json_loadb(doc->body, doc->body_len, 0, NULL);
    struct iot_alert_rule rule;
    int rc = body ? iot_alert_rule_from_json(body, &rule) : IOT_EINVAL;
    json_decref(body);
    if (rc) {
        IOT_WARN("alerts: rule %s is not readable; skipped", doc->id);
        return 0;
    }
    if (!rule.enabled)
        return 0;
    if (rr->u->n == rr->cap) {
        size_t cap = rr->cap ? rr->cap * 2 : 8;
        struct iot_alert_rule *grown = realloc(rr->u->rules, cap * sizeof *grown);
        if (!grown)
            return 1;
        rr->u->rules = grown;
        rr->cap = cap;
    }
    rr->u->rules[rr->u->n++] = rule;
    rr->u->has_group_rules |= rule.scope == IOT_ALERT_SCOPE_GROUP;
    return 0;
}

static int user_rules(struct iot_alerting *a, int64_t user_id, struct user_rules **out)
{
    struct iot_mtab_node *n = iot_mtab_find(&a->users, &user_id, sizeof user_id);
    if (n) {
        *out = n->val.ptr;
        return IOT_OK;
    }
    struct user_rules *u = calloc(1, sizeof *u);
    if (!u)
        return IOT_ENOMEM;
    struct rules_read rr = {u, 0};
    struct iot_docs_filter f = {.user_id = user_id, .ascending = true, .limit = RULES_PER_USER_READ};
    int rc = iot_docs_find(a->env.docs, IOT_DOCS_RULES, &f, add_rule, &rr);
    if (rc == IOT_OK && !(n = iot_mtab_add(&a->users, &user_id, sizeof user_id)))
        rc = IOT_ENOMEM;
    if (rc) {
        free(u->rules);
        free(u);
        return rc;
    }
    n->val.ptr = u;
    *out = u;
    return IOT_OK;
}

struct groups_read {
    int64_t ids[GROUPS_PER_DEVICE_MAX];
    size_t n;
};

static int add_group(void *ctx, const struct iot_group *g, int64_t added_at)
{
    (void)added_at;
    struct groups_read *gr = ctx;
    gr->ids[gr->n++] = g->id;
    return gr->n == GROUPS_PER_DEVICE_MAX;
}

static bool in_groups(const struct groups_read *gr, int64_t id)
{
    for (size_t i = 0; i < gr->n; i++)
        if (gr->ids[i] == id)
            return true;
    return false;
}

static bool applies(const struct iot_alert_rule *r, int64_t device_id, const struct groups_read *gr)
{
    switch (r->scope) {
    case IOT_ALERT_SCOPE_DEVICE: return r->device_id == device_id;
    case IOT_ALERT_SCOPE_GROUP: return in_groups(gr, r->group_id);
    case IOT_ALERT_SCOPE_ALL: return true;
    }
    return false;
}

static const struct rule_state *old_state(const struct device_rules *old, const char *rule_id)
{
    for (size_t i = 0; old && i < old->n; i++)
        if (strcmp(old->rules[i].rule.id, rule_id) == 0)
            return &old->rules[i];
    return NULL;
}

/* What the rule's condition is made of: a change restarts its duration. */
static bool same_condition(const struct iot_alert_rule *x, const struct iot_alert_rule *y)
{
    return strcmp(x->measurement, y->measurement) == 0 && x->op == y->op &&
           x->threshold == y->threshold && x->duration_ms == y->duration_ms;
}

/* The open alerts of the device's rules, from the store: what another
 * incarnation (or a person) left is the truth, not what was remembered. */
struct open_read {
    struct device_rules *d;
};

static int note_open(void *ctx, const struct iot_doc *doc)
{
    struct open_read *o = ctx;
    json_t *body = json_loadb(doc->body, doc->body_len, 0, NULL);
    const char *rule_id = json_string_value(json_object_get(body, "rule_id"));
    for (size_t i = 0; rule_id && i < o->d->n; i++) {
        struct rule_state *rs = &o->d->rules[i];
        if (strcmp(rs->rule.id, rule_id) == 0 && !rs->open[0])
            snprintf(rs->open, sizeof rs->open, "%s", doc->id);
    }
    json_decref(body);
    return 0;
}

static int read_open_alerts(struct iot_alerting *a, struct device_rules *d)
{
    for (size_t i = 0; i < d->n; i++)
        d->rules[i].open[0] = '\0';
    static const char *const open_states[] = {IOT_ALERT_STATUS_ACTIVE, IOT_ALERT_STATUS_ACKNOWLEDGED};
    struct open_read o = {d};
    for (size_t s = 0; s < 2; s++) {
        struct iot_docs_filter f = {.device_id = d->device_id, .k1 = open_states[s],
                                    .limit = IOT_ALERT_CACHE_MAX};
        int rc = iot_docs_find(a->env.docs, IOT_DOCS_ALERTS, &f, note_open, &o);
        if (rc)
            return rc;
    }
    return IOT_OK;
}

/* The rules of u that apply to the device, with the state carried over
 * from `old` (may be NULL). */
static int build(struct iot_alerting *a, const struct user_rules *u, struct device_rules *d,
                 const struct device_rules *old)
{
    struct groups_read gr = {.n = 0};
    if (u->has_group_rules) {
        int rc = iot_reg_device_groups(a->reg, d->device_id, add_group, &gr);
        if (rc)
            return rc;
    }
    d->rules = calloc(u->n ? u->n : 1, sizeof *d->rules);
    if (!d->rules)
        return IOT_ENOMEM;
    for (size_t i = 0; i < u->n; i++) {
        if (!applies(&u->rules[i], d->device_id, &gr))
            continue;
        struct rule_state *rs = &d->rules[d->n++];
        const struct rule_state *was = old_state(old, u->rules[i].id);
        if (was)
            *rs = *was;
        if (was && !same_condition(&was->rule, &u->rules[i]))
            rs->has_since = false;
        rs->rule = u->rules[i];
    }
    return d->n ? read_open_alerts(a, d) : IOT_OK;
}

/* The device's rule set, loaded or reloaded when needed. NULL when it
 * cannot be had now (the message then goes unevaluated). */
static struct device_rules *device_rules(struct iot_alerting *a, int64_t device_id, int64_t user_id)
{
    int64_t now = mono_ms();
    struct iot_mtab_node *n = iot_mtab_find(&a->devices, &device_id, sizeof device_id);
    struct device_rules *old = n ? n->val.ptr : NULL;
    if (old && !old->stale && now < old->refresh_at)
        return old;
    struct device_rules *d = calloc(1, sizeof *d);
    struct user_rules *u = NULL;
    int rc = d ? user_rules(a, user_id, &u) : IOT_ENOMEM;
    if (rc == IOT_OK) {
        d->device_id = device_id;
        d->user_id = user_id;
        d->refresh_at = now + a->cfg.refresh_ms;
        rc = build(a, u, d, old);
    }
    if (rc == IOT_OK && !n && !(n = iot_mtab_add(&a->devices, &device_id, sizeof device_id)))
        rc = IOT_ENOMEM;
    if (rc) {
        iot_alerting__count(a, &a->stats.load_failures, 1);
        IOT_WARN("alerts: rules of device %lld not loaded (%s); retrying in %d s",
                 (long long)device_id, iot_strerror(rc), LOAD_RETRY_MS / 1000);
        if (d)
            free(d->rules);
        free(d);
        if (old) /* keep evaluating what was known, and try again soon */
            old->refresh_at = now + LOAD_RETRY_MS;
        else /* nothing known: no rules until then, not a load per message */
            remember_no_rules(a, device_id, user_id, now + LOAD_RETRY_MS);
        return old;
    }
    if (old)
        free_device(NULL, n);
    n->val.ptr = d;
    return d;
}

/* ---- evaluation ---------------------------------------------------------------- */

static json_t *value_json(const struct alert_point *p)
{
    return p->is_int ? json_integer(p->i) : json_real(p->value);
}

static void raise_alert(struct iot_alerting *a, struct rule_state *rs, const struct alert_msg *m,
                        const struct alert_point *p)
{
    const struct iot_alert_rule *r = &rs->rule;
    char message[IOT_ALERT_RULE_NAME_MAX + IOT_TM_NAME_MAX + 96];
    char value[IOT_JSON_REAL_MAX], threshold[IOT_JSON_REAL_MAX];
    if (p->is_int)
        snprintf(value, sizeof value, "%lld", (long long)p->i);
    else
        iot_json_real_text(p->value, value);
    iot_json_real_text(r->threshold, threshold);
    snprintf(message, sizeof message, "%s: %s %s %s (value %s)", r->name, r->measurement,
             iot_alert_op_name(r->op), threshold, value);
    json_t *v = value_json(p);
    struct iot_alert_new alert = {.user_id = m->user_id, .device_id = m->device_id,
                                  .rule_id = r->id, .measurement = r->measurement, .value = v,
                                  .op = iot_alert_op_name(r->op), .has_threshold = true,
                                  .threshold = r->threshold, .severity = r->severity,
                                  .message = message, .raised_ms = iot_now_ms()};
    int rc = iot_alert_raise(&a->env, &alert, rs->open, NULL);
    json_decref(v);
    if (rc) {
        rs->open[0] = '\0';
        IOT_WARN("alerts: rule %s fired on device %lld but the alert was not stored: %s", r->id,
                 (long long)m->device_id, iot_strerror(rc));
        return;
    }
    rs->last_fired = m->ts;
    iot_alerting__count(a, &a->stats.raised, 1);
}

static void resolve_alert(struct iot_alerting *a, struct rule_state *rs)
{
    struct iot_alert_doc doc;
    int rc = iot_alert_load(&a->env, rs->open, &doc);
    if (rc == IOT_OK)
        rc = iot_alert_apply(&a->env, IOT_ALERT_RESOLVE, "system", &doc);
    iot_alert_doc_clear(&doc);
    if (rc == IOT_OK)
        iot_alerting__count(a, &a->stats.resolved, 1);
    if (rc == IOT_OK || rc == IOT_ENOTFOUND || rc == IOT_ECONFLICT) {
        rs->open[0] = '\0'; /* resolved now, or already (by hand), or gone */
        return;
    }
    IOT_WARN("alerts: alert %s not auto-resolved (%s); trying again on the next value", rs->open,
             iot_strerror(rc));
}

static bool cooling_down(const struct rule_state *rs, int64_t ts)
{
    return rs->last_fired && rs->rule.cooldown_ms && ts - rs->last_fired < rs->rule.cooldown_ms;
}

static void evaluate_rule(struct iot_alerting *a, struct rule_state *rs, const struct alert_msg *m,
                          const struct alert_point *p)
{
    if (m->ts < rs->last_ts)
        return; /* older than what was seen: history, not the present */
    rs->last_ts = m->ts;
    if (!iot_alert_op_holds(rs->rule.op, p->value, rs->rule.threshold)) {
        rs->has_since = false;
        if (rs->open[0] && rs->rule.auto_resolve)
            resolve_alert(a, rs);
        return;
    }
    if (!rs->has_since) {
        rs->has_since = true;
        rs->since = m->ts;
    }
    if (!rs->open[0] && m->ts - rs->since >= rs->rule.duration_ms && !cooling_down(rs, m->ts))
        raise_alert(a, rs, m, p);
}

static const struct alert_point *find_point(const struct alert_msg *m,
                                            const struct alert_point *points, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(points[m->first + i].name, name) == 0)
            return &points[m->first + i];
    return NULL;
}

void iot_alerting__evaluate(struct iot_alerting *a, const struct alert_msg *m,
                            const struct alert_point *points)
{
    struct device_rules *d = device_rules(a, m->device_id, m->user_id);
    for (size_t i = 0; d && i < d->n; i++) {
        const struct alert_point *p = find_point(m, points, d->rules[i].rule.measurement);
        if (p)
            evaluate_rule(a, &d->rules[i], m, p);
    }
}
