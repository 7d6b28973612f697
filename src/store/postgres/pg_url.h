/* pg_url.h — turning a DATABASE_URL ("postgresql://…" or "postgres://…") into
 * what libpq accepts, and making libpq's messages safe to log.
 *
 * Internal to src/store/postgres/. Pure functions, no shared state: any
 * thread. Outputs are heap strings the caller frees with iot_pg_url_free(),
 * which wipes them first (they hold the password). */
#ifndef IOT_STORE_POSTGRES_PG_URL_H
#define IOT_STORE_POSTGRES_PG_URL_H

#include <stddef.h>

enum {
    IOT_PG_POOL_DEFAULT = 4,
    IOT_PG_POOL_MAX = 64,
    IOT_PG_URL_MAX = 4096,
};

/* Splits our own "pool_size=N" (1..IOT_PG_POOL_MAX, default 4) out of the
 * URL's query, since libpq refuses parameters it does not know, and adds
 * connect_timeout=2 and tcp_user_timeout=2000 when the URL sets none. On
 * success *conninfo is the URL for libpq, already checked by libpq's
 * parser. IOT_EINVAL for a malformed URL or pool_size; the reason is never
 * logged with the URL in it. */
int iot_pg_url_parse(const char *url, char **conninfo, int *pool_size);

/* Wipes and frees a string from iot_pg_url_parse(); NULL is a no-op. */
void iot_pg_url_free(char *conninfo);

/* "user@host:port/dbname" of a conninfo, for log lines; never the password. */
void iot_pg_url_describe(const char *conninfo, char *out, size_t size);

/* Copies a libpq error message into out as one line (newlines and tabs
 * folded), with every occurrence of the conninfo's password, decoded or as
 * written in the URL, replaced by "***". */
void iot_pg_url_redact(const char *conninfo, const char *msg, char *out, size_t size);

#endif
