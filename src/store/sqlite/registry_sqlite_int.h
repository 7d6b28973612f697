/* registry_sqlite_int.h — what the SQLite registry's files share: the
 * schema's migrations (registry_sqlite_schema.c), named by the store's
 * schema in registry_sqlite.c, and the pending clean-ups' ops
 * (registry_sqlite_cleanup.c). Not for use outside src/store/sqlite. */
#ifndef IOT_STORE_SQLITE_REGISTRY_SQLITE_INT_H
#define IOT_STORE_SQLITE_REGISTRY_SQLITE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/registry.h"
#include "store/registry_scan.h"
#include "store/sqlite/sqlite_db.h"

/* Schema steps; raise it with every step appended (checked at compile time). */
#define IOT_REG_SQLITE_N_MIGRATIONS 4

/* Append-only SQL, one string per step. */
extern const char *const iot_reg_sqlite_migrations[IOT_REG_SQLITE_N_MIGRATIONS];
/* Per step, NULL or a query run just before it: a row back stops the
 * migration and is logged (iot_sqldb_schema.checks in sqlite_db.h). */
extern const char *const iot_reg_sqlite_migration_checks[IOT_REG_SQLITE_N_MIGRATIONS];
/* Per step, NULL or a query run just after it, logged once the migration
 * has committed (iot_sqldb_schema.notes). */
extern const char *const iot_reg_sqlite_migration_notes[IOT_REG_SQLITE_N_MIGRATIONS];

/* Dynamic statement slots (iot_sqldb_dyn_stmt) of the store: the scans'
 * (registry_sqlite.c), then the clean-ups' (registry_sqlite_cleanup.c,
 * which keeps its SQL to itself). */
#define IOT_REG_SQLITE_SCAN_SLOTS (IOT_REG_SCAN__COUNT * IOT_REG_FILTER_COMBOS * 2)
#define IOT_REG_SQLITE_CLEANUP_SLOTS 4
#define IOT_REG_SQLITE_DYN_SLOTS (IOT_REG_SQLITE_SCAN_SLOTS + IOT_REG_SQLITE_CLEANUP_SLOTS)

/* Inside the delete's write transaction on c: the pending clean-up of
 * what it deleted (registry.h, version 3), due IOT_CLEANUP_GRACE_MS from
 * now. */
int iot_reg_sqlite_cleanup_record(struct iot_sqldb_conn *c, enum iot_cleanup_kind kind,
                                  int64_t target_id);
/* The version 3 ops (self is the store's struct iot_sqldb). */
int iot_reg_sqlite_cleanup_list(void *self, int64_t due_by, struct iot_pending_cleanup *out,
                                size_t max, size_t *n);
int iot_reg_sqlite_cleanup_done(void *self, enum iot_cleanup_kind kind, int64_t target_id);
int iot_reg_sqlite_cleanup_failed(void *self, enum iot_cleanup_kind kind, int64_t target_id,
                                  int64_t next_at, const char *error);

#endif
