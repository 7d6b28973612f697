/* pg_conn.h — the pooled connection itself, shared by the pool (pg_pool.c),
 * which opens and replaces it, and by the executor (pg_exec.c), which runs
 * statements on it and notices when it breaks.
 *
 * Private to those two files. A connection is used by one thread at a time:
 * the one that took it from the pool. */
#ifndef IOT_STORE_POSTGRES_PG_CONN_H
#define IOT_STORE_POSTGRES_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct iot_pg_conn {
    PGconn *pg; /* NULL while down */
    bool lost;  /* found broken: replaced at the next checkout */
};

/* The name statement `index` is prepared under on every connection. */
static inline void iot_pg_stmt_name(int index, char *buf, size_t size)
{
    snprintf(buf, size, "s%d", index);
}

/* Prepares `sql` as `name` on c; IOT_OK or a mapped error. */
int iot_pg_conn_prepare(struct iot_pg_conn *c, const char *name, const char *sql);

#endif
