/* registry_sqlite_int.h — what the SQLite registry's files share: the
 * schema's migrations (registry_sqlite_schema.c), named by the store's
 * schema in registry_sqlite.c. Not for use outside src/store/sqlite. */
#ifndef IOT_STORE_SQLITE_REGISTRY_SQLITE_INT_H
#define IOT_STORE_SQLITE_REGISTRY_SQLITE_INT_H

/* Schema steps; raise it with every step appended (checked at compile time). */
#define IOT_REG_SQLITE_N_MIGRATIONS 3

/* Append-only SQL, one string per step. */
extern const char *const iot_reg_sqlite_migrations[IOT_REG_SQLITE_N_MIGRATIONS];
/* Per step, NULL or a query run just before it: a row back stops the
 * migration and is logged (iot_sqldb_schema.checks in sqlite_db.h). */
extern const char *const iot_reg_sqlite_migration_checks[IOT_REG_SQLITE_N_MIGRATIONS];
/* Per step, NULL or a query run just after it, logged once the migration
 * has committed (iot_sqldb_schema.notes). */
extern const char *const iot_reg_sqlite_migration_notes[IOT_REG_SQLITE_N_MIGRATIONS];

#endif
