/* telemetry_sqlite.h — the telemetry store (store/telemetry.h) on SQLite in
 * WAL mode: the embedded default, selected by "sqlite:" URLs and bare paths.
 * It wants a file of its own (the server uses "<data_dir>/telemetry.db").
 *
 * Exports only its ops table; use it through iot_telemetry_open(). Every op is
 * thread-safe (a small pool of connections, writes serialised in-process). */
#ifndef IOT_STORE_SQLITE_TELEMETRY_SQLITE_H
#define IOT_STORE_SQLITE_TELEMETRY_SQLITE_H

#include "store/telemetry.h"

extern const struct iot_telemetry_ops iot_telemetry_sqlite;

#endif
