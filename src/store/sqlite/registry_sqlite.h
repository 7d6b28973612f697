/* registry_sqlite.h — the registry store (store/registry.h) on SQLite in WAL
 * mode: the embedded default, selected by "sqlite:" URLs and bare paths.
 *
 * Exports only its ops table; use it through iot_registry_open(). Every op is
 * thread-safe (a small pool of connections, writes serialised in-process). */
#ifndef IOT_STORE_SQLITE_REGISTRY_SQLITE_H
#define IOT_STORE_SQLITE_REGISTRY_SQLITE_H

#include "store/registry.h"

extern const struct iot_registry_ops iot_registry_sqlite;

#endif
