/* docs_sqlite.h — the documents store (store/docs.h) on SQLite with JSON1:
 * the embedded default, selected by "sqlite:" URLs and bare paths. It wants
 * a file of its own (the server uses "<data_dir>/documents.db").
 *
 * Exports only its ops table; use it through iot_docs_open(). Every op is
 * thread-safe (a small pool of connections, writes serialised in-process). */
#ifndef IOT_STORE_SQLITE_DOCS_SQLITE_H
#define IOT_STORE_SQLITE_DOCS_SQLITE_H

#include "store/docs.h"

extern const struct iot_docs_ops iot_docs_sqlite;

#endif
