/* redis_conn.h — the Redis backend's connections: URL parsing, the
 * authenticated handshake, a fixed pool of blocking connections with a shared
 * "server down" state and reconnect backoff, command building and the
 * mapping of Redis errors to IOT_E* codes.
 *
 * Internal to src/store/redis (and the white-box part of the contract test).
 * The pool is thread-safe: each connection is held by one caller at a time;
 * replies returned to a caller are its own (freeReplyObject). */
#ifndef IOT_STORE_REDIS_REDIS_CONN_H
#define IOT_STORE_REDIS_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOT_REDIS_PREFIX_MAX 64  /* bytes of the ?prefix= namespace */
#define IOT_REDIS_DEFAULT_PREFIX "iotflow:"
#define IOT_REDIS_DEFAULT_PORT 6379
#define IOT_REDIS_POOL_SIZE 8    /* connections per handle */
#define IOT_REDIS_SCRIPTS_MAX 8  /* Lua scripts a pool loads on each connect */

/* What a redis:// URL says. The password is kept only to AUTH with; it
 * never reaches a log line. */
struct iot_redis_cfg {
    char host[256];
    int port;
    int db;
    char user[128];     /* "" = the default user */
    char password[512]; /* "" = no AUTH */
    char prefix[IOT_REDIS_PREFIX_MAX + 1];
    size_t prefix_len;
};

/* Parses redis://[[user]:password@]host[:port][/db][?prefix=NS]; user,
 * password and NS may be %-encoded. IOT_OK or IOT_EINVAL (logged, without
 * the password). */
int iot_redis_parse_url(const char *url, struct iot_redis_cfg *cfg);

/* A Lua script: its text and the SHA1 the server gave it. */
struct iot_redis_script {
    const char *body;
    char sha[41];
};

/* Connects with the connect timeout, sets the command timeout and TCP
 * keepalive, sends AUTH and SELECT, checks PING, and loads `scripts` (their
 * sha is filled in when learn_sha). On failure *out is NULL, `why` says what
 * happened, and the result is IOT_EUNAVAILABLE (no answer) or IOT_EINVAL
 * (the server refused our credentials or database). */
int iot_redis_connect(const struct iot_redis_cfg *cfg, struct iot_redis_script *scripts,
                      size_t n_scripts, bool learn_sha, redisContext **out, char *why,
                      size_t why_len);

/* ---- building commands ---- */

#define IOT_REDIS_ARGV_INLINE 16
#define IOT_REDIS_ARGV_NUMS 6

/* A command's arguments, binary-safe: pointers and lengths, borrowed from
 * the caller except integers, which are formatted into the builder itself.
 * Not to be copied or moved once initialised. An add that fails sets
 * `failed`, and a failed command is never sent (IOT_ENOMEM). */
struct iot_redis_argv {
    int argc;
    int cap;
    bool failed;
    unsigned n_nums;
    const char **argv;
    size_t *lens;
    const char *inline_argv[IOT_REDIS_ARGV_INLINE];
    size_t inline_lens[IOT_REDIS_ARGV_INLINE];
    char nums[IOT_REDIS_ARGV_NUMS][24];
};

void iot_redis_argv_init(struct iot_redis_argv *a);
void iot_redis_argv_free(struct iot_redis_argv *a);
void iot_redis_argv_add(struct iot_redis_argv *a, const char *p, size_t len);
void iot_redis_argv_str(struct iot_redis_argv *a, const char *s);
void iot_redis_argv_i64(struct iot_redis_argv *a, int64_t v);

/* ---- the pool ---- */

struct iot_redis_pool;
struct iot_redis_conn; /* one pooled connection, held by one caller */

/* Opens the pool and one connection now: fails unless the server answers
 * and accepts our credentials. `scripts` are copied. */
int iot_redis_pool_open(const struct iot_redis_cfg *cfg, const char *const *script_bodies,
                        size_t n_scripts, struct iot_redis_pool **out);
/* No caller may hold or wait for a connection. NULL is a no-op. */
void iot_redis_pool_close(struct iot_redis_pool *p);
const struct iot_redis_cfg *iot_redis_pool_cfg(const struct iot_redis_pool *p);

/* Takes a connection, connecting it first if needed. While the server is
 * known to be down this fails at once with IOT_EUNAVAILABLE; one caller per
 * backoff period (100 ms doubling to 2 s) gets to try it again. */
int iot_redis_acquire(struct iot_redis_pool *p, struct iot_redis_conn **out);
/* Queues a command (memory only; IOT_ENOMEM when it cannot). */
int iot_redis_append(struct iot_redis_conn *c, const struct iot_redis_argv *a);
/* Sends what is queued and reads the next reply. On an I/O error or timeout
 * (IOT_EUNAVAILABLE, IOT_ETIMEOUT) the connection is marked broken: every
 * later read fails too, and release drops it. */
int iot_redis_read(struct iot_redis_conn *c, redisReply **out);
/* Gives the connection back (dropping it when broken or when replies are
 * still unread). */
void iot_redis_release(struct iot_redis_conn *c);

/* One command on a pooled connection. On IOT_OK *out is the reply (maybe an
 * error reply: see iot_redis_reply_rc), owned by the caller. */
int iot_redis_call(struct iot_redis_pool *p, const struct iot_redis_argv *a, redisReply **out);

/* Starts an EVALSHA of script `id` with `n_keys` keys; add keys and
 * arguments after it. */
void iot_redis_argv_eval(struct iot_redis_argv *a, const struct iot_redis_pool *p, unsigned id,
                         int n_keys);
/* Runs a command started with iot_redis_argv_eval; when the server has lost
 * the script (NOSCRIPT) runs it again as EVAL, which also reloads it. */
int iot_redis_eval(struct iot_redis_pool *p, unsigned id, struct iot_redis_argv *a,
                   redisReply **out);
/* True when the reply is the server saying it does not know the script. */
bool iot_redis_is_noscript(const redisReply *r);

/* IOT_OK for any reply but an error reply; an error reply mapped to an
 * IOT_E* code (WRONGTYPE, bad numbers → IOT_EINVAL; LOADING, OOM, NOAUTH,
 * READONLY… → IOT_EUNAVAILABLE; anything else → IOT_EINTERNAL, logged). */
int iot_redis_reply_rc(const redisReply *r);

#endif
