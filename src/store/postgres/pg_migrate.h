/* pg_migrate.h — versioned schema migrations for the PostgreSQL stores,
 * applied when a store opens.
 *
 * Internal to src/store/postgres/. Safe to run from several threads or
 * processes at once: they queue on an advisory lock held for the migration
 * transaction, and each step runs exactly once. */
#ifndef IOT_STORE_POSTGRES_PG_MIGRATE_H
#define IOT_STORE_POSTGRES_PG_MIGRATE_H

#include "store/postgres/pg_pool.h"

/* Brings schema->component up to schema->n_migrations on connection c, all
 * steps in one transaction: everything or nothing. A database already past
 * our last version (written by a newer iotflowd) is refused with
 * IOT_EINTERNAL, never downgraded. */
int iot_pg_migrate(struct iot_pg_conn *c, const struct iot_pg_schema *schema);

#endif
