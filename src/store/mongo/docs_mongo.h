/* docs_mongo.h — the documents store (store/docs.h) on MongoDB through
 * libmongoc, selected by "mongodb://[user:password@]host[:port][,…]/db[?options]"
 * URLs (the database is required). Tested against FerretDB 1.24 on SQLite
 * (scripts/services.sh ferretdb), whose limits the design keeps to.
 *
 * Exports only its ops table; use it through iot_docs_open(). Every op is
 * thread-safe (a libmongoc client pool: one client per op). */
#ifndef IOT_STORE_MONGO_DOCS_MONGO_H
#define IOT_STORE_MONGO_DOCS_MONGO_H

#include "store/docs.h"

extern const struct iot_docs_ops iot_docs_mongo;

#endif
