/* registry_pg.h — the registry store (store/registry.h) on PostgreSQL through
 * libpq: the server backend, selected by "postgresql://" and "postgres://"
 * URLs (optionally with ?pool_size=1..64, default 4).
 *
 * Exports only its ops table; use it through iot_registry_open(). Every op
 * is thread-safe (a fixed pool of persistent connections) and returns
 * IOT_EUNAVAILABLE promptly while the server is down, recovering on its own
 * when the server returns. */
#ifndef IOT_STORE_POSTGRES_REGISTRY_PG_H
#define IOT_STORE_POSTGRES_REGISTRY_PG_H

#include "store/registry.h"

extern const struct iot_registry_ops iot_registry_postgres;

#endif
