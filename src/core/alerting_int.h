/* alerting_int.h — what the two halves of the alerting engine share:
 * alerting.c (the queue, the thread, the invalidation channels) and
 * alerting_eval.c (the per-device rule sets, their state, evaluation).
 *
 * Threads: `lock` guards the queue, `stopping` and `stats`; the tables
 * (`devices`, `users`) belong to the alerting thread alone, so evaluation
 * takes no lock at all. */
#ifndef IOT_CORE_ALERTING_INT_H
#define IOT_CORE_ALERTING_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "core/alerting.h"
#include "core/alerting_docs.h"
#include "util/hash_table.h"

/* One numeric value of a queued message; `name` lives in the queue item. */
struct alert_point {
    const char *name;
    double value;
    bool is_int;
    int64_t i;
};

struct alert_msg {
    int64_t device_id, user_id, ts;
    size_t first, n; /* its points in the item's array */
};

enum item_kind { ITEM_MESSAGES, ITEM_USER, ITEM_DEVICE, ITEM_DEVICE_GONE };

/* One queue entry: a committed batch, or an invalidation of `id`. */
struct item {
    struct item *next;
    enum item_kind kind;
    int64_t id;
    size_t n_msgs;
    struct alert_msg *msgs;
    struct alert_point *points;
};

struct iot_alerting {
    struct iot_alerting_config cfg;
    struct iot_registry *reg;
    struct iot_alert_env env;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct item *head, *tail;
    size_t queued; /* messages */
    bool started, stopping, joined;
    int64_t last_drop_log;
    struct iot_alerting_stats stats;
    pthread_t thread;
    struct iot_cache_sub *rules_sub, *notice_sub;

    /* The alerting thread's. */
    struct iot_mtab devices; /* device id → struct device_rules * */
    struct iot_mtab users;   /* user id → struct user_rules * */
};

/* alerting_eval.c, alerting thread only. */
void iot_alerting__init_tables(struct iot_alerting *a);
void iot_alerting__free_tables(struct iot_alerting *a);
void iot_alerting__evaluate(struct iot_alerting *a, const struct alert_msg *m,
                            const struct alert_point *points);
void iot_alerting__user_stale(struct iot_alerting *a, int64_t user_id);
void iot_alerting__device_stale(struct iot_alerting *a, int64_t device_id);
void iot_alerting__device_gone(struct iot_alerting *a, int64_t device_id);
/* Adds to a stat under the lock. */
void iot_alerting__count(struct iot_alerting *a, int64_t *stat, int64_t n);

#endif
