/* tmcass_unwritten.c — TEMPORARY: the read and delete ops of the Cassandra
 * store are being written (tmcass_read.c, tmcass_delete.c); until they land
 * these refuse with IOT_EINTERNAL so that the tree builds. Delete this file
 * when they land. */
#include "store/cassandra/tmcass_int.h"
#include "util/err.h"

int tmc_query_device(void *s, int64_t d, const struct iot_tm_range *r, iot_tm_record_fn fn, void *c) { (void)s, (void)d, (void)r, (void)fn, (void)c; return IOT_EINTERNAL; }
int tmc_query_user(void *s, int64_t u, const struct iot_tm_range *r, iot_tm_record_fn fn, void *c) { (void)s, (void)u, (void)r, (void)fn, (void)c; return IOT_EINTERNAL; }
int tmc_count_user(void *s, int64_t u, int64_t f, int64_t t, int64_t *n) { (void)s, (void)u, (void)f, (void)t, (void)n; return IOT_EINTERNAL; }
int tmc_latest(void *s, int64_t d, iot_tm_latest_fn fn, void *c) { (void)s, (void)d, (void)fn, (void)c; return IOT_EINTERNAL; }
int tmc_rollups(void *s, int64_t d, const char *n, int64_t w, int64_t f, int64_t t, iot_tm_rollup_fn fn, void *c) { (void)s, (void)d, (void)n, (void)w, (void)f, (void)t, (void)fn, (void)c; return IOT_EINTERNAL; }
int tmc_samples(void *s, int64_t d, const char *n, int64_t f, int64_t t, iot_tm_sample_fn fn, void *c) { (void)s, (void)d, (void)n, (void)f, (void)t, (void)fn, (void)c; return IOT_EINTERNAL; }
int tmc_samples_typed(void *s, int64_t d, const char *n, int64_t f, int64_t t, iot_tm_typed_sample_fn fn, void *c) { (void)s, (void)d, (void)n, (void)f, (void)t, (void)fn, (void)c; return IOT_EINTERNAL; }
int tmc_sample_edge(void *s, int64_t d, const char *n, int64_t f, int64_t t, bool l, struct iot_tm_sample *o) { (void)s, (void)d, (void)n, (void)f, (void)t, (void)l, (void)o; return IOT_EINTERNAL; }
int tmc_catalog(void *s, int64_t d, iot_tm_catalog_fn fn, void *c) { (void)s, (void)d, (void)fn, (void)c; return IOT_EINTERNAL; }
int tmc_delete_range(void *s, int64_t d, int64_t f, int64_t t, int64_t *n) { (void)s, (void)d, (void)f, (void)t, (void)n; return IOT_EINTERNAL; }
int tmc_delete_device(void *s, int64_t d) { (void)s, (void)d; return IOT_EINTERNAL; }
int tmc_delete_user(void *s, int64_t u) { (void)s, (void)u; return IOT_EINTERNAL; }
