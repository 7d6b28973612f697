/* reports.h — analytics reports: for one device and a period [start, end),
 * each measurement's count, min, max, mean, first and last (whole hours
 * from the hourly rollups, the edges from raw samples: core/aggregate.h),
 * plus the alerts raised in the period (their documents as stored), kept
 * as a document in IOT_DOCS_REPORTS; and the daily run, a report of one
 * UTC day for every device that sent telemetry in it, made under a
 * deterministic id ("daily:<device>:<yyyy-mm-dd>") so that of several
 * instances sharing the documents store only one makes each.
 *
 * A report body: {"id", "kind" ("manual"|"daily"), "device_id",
 * "device_name", "user_id" (the owner's public id), "start", "end",
 * "created_at", "measurements": [{"name", "unit", "count", "min", "max",
 * "mean", "first", "first_at", "last", "last_at"}], "alerts": [...],
 * "alert_count", "alerts_truncated"}. Thread-safe; the stores must
 * outlive every call. */
#ifndef IOT_CORE_REPORTS_H
#define IOT_CORE_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/docs.h"
#include "store/registry.h"
#include "store/telemetry.h"

#define IOT_REPORT_SPAN_MAX (INT64_C(366) * IOT_TM_DAY) /* longest period */
#define IOT_REPORT_MEASUREMENTS_MAX 1000 /* more are left out (measurements_truncated) */
#define IOT_REPORT_ALERTS_MAX 1000       /* alerts listed; alert_count counts them all */

struct iot_report_stores {
    struct iot_registry *reg;
    struct iot_telemetry *tm;
    struct iot_docs *docs;
};

struct iot_report_spec {
    const char *id; /* NULL: a fresh random 32-hex id */
    const char *kind;
    const struct iot_device *device;
    const char *owner_uid; /* the owner's public id */
    int64_t start, end;    /* ms, start < end, end - start <= IOT_REPORT_SPAN_MAX */
};

/* Builds the report and stores it as a new document (an id already taken:
 * IOT_ECONFLICT). On IOT_OK *body (the caller frees) holds the stored body
 * and *len its length. *empty (may be NULL) tells whether no measurement
 * had a sample in the period. IOT_EINVAL for a bad period, else the
 * stores' errors. */
int iot_report_make(const struct iot_report_stores *s, const struct iot_report_spec *spec,
                    char **body, size_t *len, bool *empty);

/* What a daily run did: devices looked at; reports made; devices skipped
 * because their report already existed (made by another instance, or an
 * earlier run); devices with no telemetry that day; failures. */
struct iot_daily_result {
    size_t devices, made, existing, quiet, failed;
};

/* The daily reports of the UTC day that starts at day_ms (a midnight).
 * IOT_EINVAL when day_ms is not a midnight; else IOT_OK (failures of
 * single devices are counted and logged) or the registry's error. */
int iot_reports_daily(const struct iot_report_stores *s, int64_t day_ms,
                      struct iot_daily_result *out);

/* The thread that runs iot_reports_daily for the previous day shortly
 * after every midnight UTC (and once at start, for a day missed while no
 * instance ran). NULL when it cannot start. */
struct iot_daily_reports;
struct iot_daily_reports *iot_daily_reports_start(const struct iot_report_stores *s);
/* Stops (a run under way finishes its current device first) and frees.
 * NULL is a no-op. */
void iot_daily_reports_free(struct iot_daily_reports *d);

#endif
