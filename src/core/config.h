/* config.h — iotflowd's settings: one declarative table (name, environment
 * variable, flag, type, default, bounds, help) from which defaults, env
 * parsing, flag parsing and `--help` all come.
 *
 * Precedence: default < environment < command-line flag. Strings in a loaded
 * config are owned by it; free with iot_config_free. */
#ifndef IOT_CORE_CONFIG_H
#define IOT_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct iot_config {
    char *host;
    int64_t port;
    char *data_dir;
    char *database_url; /* empty: SQLite file iotflow.db in data_dir */
    char *redis_url;    /* empty: the in-process cache */
    char *mongodb_url;  /* empty: SQLite file documents.db in data_dir */
    char *admin_token;  /* empty: admin API refused */
    bool trust_user_id_header;
    int64_t auth_rate_limit;   /* requests/minute per client IP; 0 = off */
    int64_t admin_fail_limit;  /* failed admin tokens/minute per client IP; 0 = off */
    int64_t max_body;          /* bytes */
    char *log_level;           /* debug|info|warn|error|off */
    int64_t session_ttl;       /* seconds */
    int64_t online_window;     /* seconds */
    int64_t threads;           /* HTTP worker threads; 0 = 2 x CPUs */
    int64_t max_connections;
    char *telemetry_url;         /* empty: SQLite file telemetry.db in data_dir */
    int64_t device_rate_limit;   /* telemetry requests/minute per device; 0 = off */
    bool fsync;                  /* telemetry commits survive power loss, not only crashes */
    bool sched_batch;            /* all threads under SCHED_BATCH (see main.c) */
    bool http_epoll;             /* epoll instead of poll (see http/server.c) */
    int64_t max_connections_per_ip; /* 0 = no cap */
    int64_t http_header_timeout;    /* seconds for a whole request header; 0 = none */
    int64_t http_body_timeout;      /* seconds for a whole request body; 0 = none */
    int64_t http_max_uri;           /* request target bytes; more → 414 */
    int64_t http_max_header;        /* request header bytes; more → 431 */
    char *cors_origins;             /* "*" or a comma-separated list of origins */
    char *trusted_proxies;          /* reverse proxies whose X-Forwarded-For counts */
    int64_t ingest_queue;        /* messages waiting for commit; more → 503 */
    int64_t retention_days;      /* raw telemetry */
    int64_t rollup_retention_days;
    int64_t max_page_bytes;         /* stored telemetry bytes per history page */
    int64_t device_byte_rate_limit; /* telemetry body bytes/minute per device; 0 = off */
    int64_t key_cache_ttl_ms;
    int64_t stream_heartbeat;    /* seconds between SSE keep-alive comments */
    int64_t stream_recheck;      /* seconds between credential re-checks of live streams */
    int64_t streams_per_user;    /* live streams per user on this instance; 0 = no cap */
    int64_t streams_per_device;  /* live streams per device on this instance; 0 = no cap */
    bool public_status;          /* /status and detailed health for anyone, not only admins */
    char *metrics;               /* who reads GET /metrics: "admin" or "public" */
    int64_t cleanup_retry;       /* seconds before a failed telemetry clean-up is retried */
    int64_t event_retention_days; /* event log; 0 = forever */
    bool daily_reports;           /* the server makes each active device's daily report */
    int64_t mqtt_port;            /* 0 = no MQTT listener */
    int64_t mqtt_threads;         /* MQTT event loops */
    int64_t mqtt_max_connections;
    int64_t mqtt_max_packet;      /* bytes of one MQTT packet */
    int64_t mqtt_inflight;        /* QoS 1 messages of a client awaiting their PUBACK */
    int64_t mqtt_keepalive_max;   /* seconds */
    int64_t mqtt_session_expiry;  /* seconds a persistent session waits for its client */
    int64_t mqtt_connect_timeout; /* seconds from connecting to CONNECT */
    int64_t mqtt_pending_per_ip;  /* connections of one address awaiting CONNECT; 0 = no cap */
    int64_t mqtt_per_device;      /* MQTT connections of one device; 0 = no cap */
};

/* Fills cfg from defaults, then `envp`-style lookup via getenv, then argv.
 * Returns 0, or 1 when --help/--version was printed (caller exits 0), or
 * IOT_EINVAL after printing the problem to `err`. */
int iot_config_load(struct iot_config *cfg, int argc, char **argv, FILE *out, FILE *err);
void iot_config_free(struct iot_config *cfg);
void iot_config_print_help(FILE *out);

/* Copies a store URL for a log line with its secrets replaced by "***":
 * the password of the user info ("scheme://user:secret@host" →
 * "scheme://user:***@host"; it ends at the last '@' of all, so a raw '@',
 * '/', '?' or '#' in it stays hidden — and an '@' in a query hides the
 * host too), and the value of every parameter named like a secret
 * (password=, sslpassword=, ...) in a URL's query or in libpq's
 * "key=value" form. Any text is accepted; more is hidden when unsure. */
void iot_config_redact_url(const char *url, char *out, size_t size);

#endif
