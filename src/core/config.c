#include "core/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "util/log.h"

enum opt_type { OPT_STRING, OPT_INT, OPT_BOOL };

struct opt {
    const char *env;
    const char *flag; /* without the leading "--" */
    enum opt_type type;
    size_t offset;
    const char *def;
    int64_t min, max; /* for OPT_INT */
    const char *help;
};

#define FIELD(f) offsetof(struct iot_config, f)

static const struct opt options[] = {
    {"IOTFLOW_HOST", "host", OPT_STRING, FIELD(host), "127.0.0.1", 0, 0,
     "address to listen on (0.0.0.0 for every interface)"},
    {"IOTFLOW_PORT", "port", OPT_INT, FIELD(port), "5000", 1, 65535, "TCP port"},
    {"IOTFLOW_DATA_DIR", "data-dir", OPT_STRING, FIELD(data_dir), "./data",
     0, 0, "directory of the embedded stores"},
    {"DATABASE_URL", "database-url", OPT_STRING, FIELD(database_url), "", 0, 0,
     "registry store: sqlite:///path.db (default <data-dir>/iotflow.db) or postgresql://user:pass@host:port/db"},
    {"REDIS_URL", "redis-url", OPT_STRING, FIELD(redis_url), "", 0, 0,
     "cache store: redis://[:pass@]host[:port][/db][?prefix=NS] (default: in-process)"},
    {"MONGODB_URL", "mongodb-url", OPT_STRING, FIELD(mongodb_url), "", 0, 0,
     "documents store: mongodb://[user:pass@]host[:port]/db[?options] (default: SQLite file documents.db in <data-dir>)"},
    {"IOTFLOW_ADMIN_TOKEN", "admin-token", OPT_STRING, FIELD(admin_token), "", 0, 0,
     "token for 'Authorization: admin <token>'; empty refuses admin calls (prefer the env var: flags show in ps)"},
    {"IOTFLOW_TRUST_USER_ID_HEADER", "trust-user-id-header", OPT_BOOL, FIELD(trust_user_id_header),
     "0", 0, 1, "accept the legacy X-User-ID header as authentication (only behind a trusted gateway)"},
    {"IOTFLOW_AUTH_RATE_LIMIT", "auth-rate-limit", OPT_INT, FIELD(auth_rate_limit), "30", 0,
     1000000, "login, user registration and device registration requests per minute per client IP "
     "(an IPv6 client: its /64); 0 = off"},
    {"IOTFLOW_ADMIN_FAIL_LIMIT", "admin-fail-limit", OPT_INT, FIELD(admin_fail_limit), "10", 0,
     1000000, "failed admin-token attempts per minute per client IP (an IPv6 client: its /64) before "
     "its admin requests get 429; 0 = off"},
    {"IOTFLOW_MAX_BODY", "max-body", OPT_INT, FIELD(max_body), "1048576", 1024, 64 * 1024 * 1024,
     "largest accepted request body in bytes (413 above)"},
    {"IOTFLOW_LOG_LEVEL", "log-level", OPT_STRING, FIELD(log_level), "info", 0, 0,
     "debug, info, warn, error or off"},
    {"IOTFLOW_SESSION_TTL", "session-ttl", OPT_INT, FIELD(session_ttl), "86400", 1, 31536000,
     "lifetime of a login session token, seconds"},
    {"IOTFLOW_ONLINE_WINDOW", "online-window", OPT_INT, FIELD(online_window), "300", 1, 86400,
     "a device seen within this many seconds is online"},
    {"IOTFLOW_THREADS", "threads", OPT_INT, FIELD(threads), "0", 0, 256,
     "HTTP worker threads; 0 = twice the CPU count, eight times when a store is a server"},
    {"IOTFLOW_MAX_CONNECTIONS", "max-connections", OPT_INT, FIELD(max_connections), "1024", 1,
     100000, "simultaneous client connections"},
    {"IOTFLOW_HTTP_EPOLL", "http-epoll", OPT_BOOL, FIELD(http_epoll), "0", 0, 1,
     "wait for HTTP sockets with epoll instead of poll: better with more than ~250 open "
     "connections, slower with fewer"},
    {"IOTFLOW_MAX_CONNECTIONS_PER_IP", "max-connections-per-ip", OPT_INT,
     FIELD(max_connections_per_ip), "128", 0, 100000,
     "simultaneous connections from one client address (the TCP peer, an IPv6 one by its /64; "
     "a trusted proxy is not capped); 0 = no cap"},
    {"IOTFLOW_HTTP_HEADER_TIMEOUT", "http-header-timeout", OPT_INT, FIELD(http_header_timeout),
     "30", 0, 3600, "seconds a client has to send a whole request header, from its first line "
     "(a new connection: from connecting); 0 = no limit"},
    {"IOTFLOW_HTTP_BODY_TIMEOUT", "http-body-timeout", OPT_INT, FIELD(http_body_timeout), "60",
     0, 3600, "seconds a client has to send a whole request body; 0 = no limit"},
    {"IOTFLOW_MQTT_PORT", "mqtt-port", OPT_INT, FIELD(mqtt_port), "0", 0, 65535,
     "TCP port of the MQTT listener (devices publish telemetry with their API key as password; "
     "docs/MQTT.md); 0 = no MQTT"},
    {"IOTFLOW_MQTT_THREADS", "mqtt-threads", OPT_INT, FIELD(mqtt_threads), "2", 1, 64,
     "MQTT event loops (each owns its connections)"},
    {"IOTFLOW_MQTT_MAX_CONNECTIONS", "mqtt-max-connections", OPT_INT,
     FIELD(mqtt_max_connections), "10000", 1, 1000000,
     "simultaneous MQTT connections; more are closed at once"},
    {"IOTFLOW_MQTT_MAX_PACKET", "mqtt-max-packet", OPT_INT, FIELD(mqtt_max_packet), "1049600",
     1024, 64 * 1024 * 1024 + 1024,
     "largest accepted MQTT packet in bytes (a batch of IOTFLOW_MAX_BODY bytes fits the default)"},
    {"IOTFLOW_MQTT_INFLIGHT", "mqtt-inflight", OPT_INT, FIELD(mqtt_inflight), "64", 1, 65535,
     "QoS 1 messages of one MQTT client awaiting their PUBACK (the v5 Receive Maximum)"},
    {"IOTFLOW_MQTT_KEEPALIVE_MAX", "mqtt-keepalive-max", OPT_INT, FIELD(mqtt_keepalive_max),
     "600", 5, 65535, "longest MQTT keep-alive in seconds; a client asking 0 or more gets this"},
    {"IOTFLOW_MQTT_SESSION_EXPIRY", "mqtt-session-expiry", OPT_INT, FIELD(mqtt_session_expiry),
     "86400", 0, 31536000,
     "longest time in seconds a persistent MQTT session waits for its client; 0 = none kept"},
    {"IOTFLOW_MQTT_CONNECT_TIMEOUT", "mqtt-connect-timeout", OPT_INT,
     FIELD(mqtt_connect_timeout), "10", 1, 3600,
     "seconds a new MQTT connection has to send CONNECT"},
    {"IOTFLOW_MQTT_PENDING_PER_IP", "mqtt-pending-per-ip", OPT_INT, FIELD(mqtt_pending_per_ip),
     "32", 0, 100000,
     "MQTT connections of one address (an IPv6 one by its /64) that have not yet sent CONNECT; "
     "more are closed at once (connected devices behind one NAT are not capped); 0 = no cap"},
    {"IOTFLOW_MQTT_CONNECTIONS_PER_DEVICE", "mqtt-connections-per-device", OPT_INT,
     FIELD(mqtt_per_device), "16", 0, 100000,
     "MQTT connections of one device on this instance (a takeover of its own client id "
     "always passes); more get CONNACK 0x97 (3.1.1: 3); 0 = no cap"},
    {"IOTFLOW_HTTP_MAX_URI", "http-max-uri", OPT_INT, FIELD(http_max_uri), "8192", 256, 65536,
     "longest accepted request target (path and query) in bytes (414 above)"},
    {"IOTFLOW_HTTP_MAX_HEADER", "http-max-header", OPT_INT, FIELD(http_max_header), "8192", 1024,
     262144, "largest accepted request header in bytes (431 above)"},
    {"IOTFLOW_CORS_ORIGINS", "cors-origins", OPT_STRING, FIELD(cors_origins), "", 0, 0,
     "origins allowed to call the API from a browser: * or a comma-separated list; empty: "
     "CORS_ORIGINS (the original's name), else *"},
    {"IOTFLOW_TRUSTED_PROXIES", "trusted-proxies", OPT_STRING, FIELD(trusted_proxies), "", 0, 0,
     "reverse proxies (IPs and CIDRs, comma-separated) whose X-Forwarded-For names the client; "
     "empty: the header is ignored"},
    {"IOTFLOW_TELEMETRY_URL", "telemetry-url", OPT_STRING, FIELD(telemetry_url), "", 0, 0,
     "telemetry store: sqlite:///path.db (default <data-dir>/telemetry.db) or "
     "cassandra://[user:pass@]host[:port][,host...]/keyspace?replication=N&consistency=C"},
    {"IOTFLOW_DEVICE_RATE_LIMIT", "device-rate-limit", OPT_INT, FIELD(device_rate_limit), "600", 0,
     100000000, "telemetry requests per minute per device (a batch counts once); 0 = off"},
    {"IOTFLOW_FSYNC", "fsync", OPT_BOOL, FIELD(fsync), "0", 0, 1,
     "fsync every telemetry commit: acknowledged data survives power loss, not only a crash"},
    {"IOTFLOW_INGEST_QUEUE", "ingest-queue", OPT_INT, FIELD(ingest_queue), "100000", 1000,
     10000000, "telemetry messages waiting for commit; beyond it 503 + Retry-After"},
    {"IOTFLOW_RETENTION_DAYS", "retention-days", OPT_INT, FIELD(retention_days), "90", 0, 36500,
     "days raw telemetry is kept; 0 = forever"},
    {"IOTFLOW_ROLLUP_RETENTION_DAYS", "rollup-retention-days", OPT_INT,
     FIELD(rollup_retention_days), "365", 0, 36500, "days hourly/daily rollups are kept; 0 = forever"},
    {"IOTFLOW_MAX_PAGE_BYTES", "max-page-bytes", OPT_INT, FIELD(max_page_bytes), "4194304", 65536,
     1073741824, "bytes of stored telemetry one history page may carry; a page ends early at "
     "this budget and its next_cursor continues it"},
    {"IOTFLOW_DEVICE_BYTE_RATE_LIMIT", "device-byte-rate-limit", OPT_INT,
     FIELD(device_byte_rate_limit), "0", 0, INT64_C(1) << 40,
     "bytes of telemetry request bodies per minute per device (429 + Retry-After beyond); 0 = off"},
    {"IOTFLOW_KEY_CACHE_TTL_MS", "key-cache-ttl-ms", OPT_INT, FIELD(key_cache_ttl_ms), "1000", 0,
     3600000, "how long a device API key stays in the local cache, ms"},
    {"IOTFLOW_SCHED_BATCH", "sched-batch", OPT_BOOL, FIELD(sched_batch), "1", 0, 1,
     "run under SCHED_BATCH: a woken thread waits for a running one's time slice instead of "
     "preempting it (measured +9-13% ingest on 2 cores); 0 = the default policy"},
    {"IOTFLOW_STREAM_HEARTBEAT", "stream-heartbeat", OPT_INT, FIELD(stream_heartbeat), "15", 1,
     3600, "seconds between keep-alive comments on live streams"},
    {"IOTFLOW_STREAM_RECHECK", "stream-recheck", OPT_INT, FIELD(stream_recheck), "5", 1, 3600,
     "seconds between re-checks of every live stream's credentials (logout, expiry, key "
     "rotation, deactivation, deletion end a stream within this time)"},
    {"IOTFLOW_STREAMS_PER_USER", "streams-per-user", OPT_INT, FIELD(streams_per_user), "8", 0,
     100000, "live streams one user may hold on this instance (a device key's streams count "
     "for its owner); beyond: 429; 0 = no limit but the global one"},
    {"IOTFLOW_STREAMS_PER_DEVICE", "streams-per-device", OPT_INT, FIELD(streams_per_device), "4",
     0, 100000, "live streams of one device on this instance, whoever opens them; beyond: 429; "
     "0 = no limit but the global one"},
    {"IOTFLOW_PUBLIC_STATUS", "public-status", OPT_BOOL, FIELD(public_status), "0", 0, 1,
     "show /status and /health?detailed=true (store checks, device counts, threads) to "
     "anyone; off: only to the admin, others get the plain health answer"},
    {"IOTFLOW_METRICS", "metrics", OPT_STRING, FIELD(metrics), "admin", 0, 0,
     "who may read GET /metrics (Prometheus): admin (the admin token or an admin user) or "
     "public (anyone: for a scraper on a private network)"},
    {"IOTFLOW_CLEANUP_RETRY", "cleanup-retry", OPT_INT, FIELD(cleanup_retry), "5", 1, 3600,
     "seconds before the telemetry of a deleted device or user is removed again when the "
     "telemetry store failed (doubling per failure up to 10 min; pending clean-ups are looked "
     "for every min(this, 10) seconds)"},
    {"IOTFLOW_EVENT_RETENTION_DAYS", "event-retention-days", OPT_INT,
     FIELD(event_retention_days), "90", 0, 36500,
     "days the event log keeps an event; 0 = forever (checked hourly)"},
    {"IOTFLOW_DAILY_REPORTS", "daily-reports", OPT_BOOL, FIELD(daily_reports), "1", 0, 1,
     "make a report of the previous UTC day for every device that sent telemetry, shortly "
     "after midnight UTC (one instance of several makes each)"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

/* Where the fallback for an empty IOTFLOW_CORS_ORIGINS is stored. */
static const struct opt cors_option = {.type = OPT_STRING, .offset = FIELD(cors_origins)};

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, IOT_OK;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, IOT_OK;
    return IOT_EINVAL;
}

static int set_value(struct iot_config *cfg, const struct opt *o, const char *value, FILE *err)
{
    char *base = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STRING: {
        char *copy = strdup(value);
        if (!copy)
            return IOT_ENOMEM;
        free(*(char **)base);
        *(char **)base = copy;
        return IOT_OK;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            fprintf(err, "iotflowd: %s must be an integer in [%lld, %lld], got '%s'\n", o->env,
                    (long long)o->min, (long long)o->max, value);
            return IOT_EINVAL;
        }
        *(int64_t *)base = v;
        return IOT_OK;
    }
    case OPT_BOOL:
        if (parse_bool(value, (bool *)base)) {
            fprintf(err, "iotflowd: %s must be 0/1/true/false, got '%s'\n", o->env, value);
            return IOT_EINVAL;
        }
        return IOT_OK;
    }
    return IOT_EINTERNAL;
}

void iot_config_print_help(FILE *out)
{
    fprintf(out, "Usage: iotflowd [--flag=value ...]\n\n"
                 "IoTFlow backend server. Every setting is an environment variable or an\n"
                 "equal flag; flags win over the environment.\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        fprintf(out, "  --%-22s %-30s default: %s\n      %s\n", o->flag, o->env,
                *o->def ? o->def : "(empty)", o->help);
    }
    fprintf(out, "  --help                   this text\n  --version                print the version\n");
    fprintf(out, "\nCommands:\n"
                 "  iotflowd copy-telemetry --from URL --to URL [--state FILE] [--batch N]\n"
                 "      copy every telemetry message of one store into another, e.g. SQLite\n"
                 "      to Cassandra; resumable (iotflowd copy-telemetry --help)\n");
}

static const struct opt *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].flag) == len && strncmp(options[i].flag, name, len) == 0)
            return &options[i];
    return NULL;
}

static int load_args(struct iot_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            iot_config_print_help(out);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            fprintf(out, "iotflowd %s\n", IOT_VERSION);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err, "iotflowd: unexpected argument '%s' (see --help)\n", arg);
            return IOT_EINVAL;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find_flag(name, len);
        if (!o) {
            fprintf(err, "iotflowd: unknown flag '%s' (see --help)\n", arg);
            return IOT_EINVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && o->type == OPT_BOOL)
            value = "1";
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(err, "iotflowd: flag --%s needs a value\n", o->flag);
                return IOT_EINVAL;
            }
            value = argv[++i];
        }
        if (set_value(cfg, o, value, err))
            return IOT_EINVAL;
    }
    return IOT_OK;
}

int iot_config_load(struct iot_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *env = getenv(options[i].env);
        if (set_value(cfg, &options[i], options[i].def, err) ||
            (env && set_value(cfg, &options[i], env, err)))
            return IOT_EINVAL;
    }
    int rc = load_args(cfg, argc, argv, out, err);
    if (rc)
        return rc;
    /* The original's CORS_ORIGINS is honoured; our own name wins. */
    const char *cors = getenv("CORS_ORIGINS");
    if (!*cfg->cors_origins && set_value(cfg, &cors_option, cors && *cors ? cors : "*", err))
        return IOT_EINVAL;
    enum iot_log_level level;
    if (iot_log_parse_level(cfg->log_level, &level)) {
        fprintf(err, "iotflowd: IOTFLOW_LOG_LEVEL must be debug, info, warn, error or off\n");
        return IOT_EINVAL;
    }
    if (strcmp(cfg->metrics, "admin") != 0 && strcmp(cfg->metrics, "public") != 0) {
        fprintf(err, "iotflowd: IOTFLOW_METRICS must be admin or public\n");
        return IOT_EINVAL;
    }
    return IOT_OK;
}

void iot_config_free(struct iot_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == OPT_STRING) {
            char **p = (char **)((char *)cfg + options[i].offset);
            free(*p);
            *p = NULL;
        }
}

/* ---- store URLs in log lines ------------------------------------------------
 * What is redacted is whatever the operator configured, including strings
 * no backend accepted (those are exactly the ones an error line quotes), so
 * nothing here trusts the text to be well formed. When in doubt more is
 * hidden, never less: a line that shows too little costs a look at the
 * configuration; one that shows a password cannot be taken back. */

struct redacted {
    char *buf;
    size_t size, len;
};

static void put(struct redacted *o, const char *s, size_t n)
{
    if (o->len + 1 >= o->size)
        return;
    size_t room = o->size - 1 - o->len;
    size_t k = n < room ? n : room;
    memcpy(o->buf + o->len, s, k);
    o->len += k;
    o->buf[o->len] = '\0';
}

/* Does a parameter of this name hold a secret? libpq's password and
 * sslpassword, and anything else named like one (passfile, only a path,
 * is hidden too: harmless). */
static bool secret_key(const char *k, size_t n)
{
    static const char *const words[] = {"pass", "secret", "token"};
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= n; i++)
            if (strncasecmp(k + i, words[w], wl) == 0)
                return true;
    }
    return false;
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Length of "scheme://" at the start of s (an RFC 3986 scheme), or 0. */
static size_t scheme_len(const char *s)
{
    if (!is_alpha(s[0]))
        return 0;
    size_t n = 1;
    while (is_alpha(s[n]) || (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-' ||
           s[n] == '.')
        n++;
    return strncmp(s + n, "://", 3) == 0 ? n + 3 : 0;
}

/* The '@' that ends the user info after auth, or NULL: the last '@' of
 * all. Parsers disagree on where user info ends (libpq: before the first
 * '/'; ours for Redis: the last '@' before the first '?'), and a password
 * may hold '@', '/', '?' or '#' raw, so no earlier delimiter can be
 * trusted to end it. The cost: an '@' in a query parameter hides the host
 * and path too. */
static const char *userinfo_end(const char *auth) { return strrchr(auth, '@'); }

/* A query "k=v&k=v": the value of every secret key becomes "***". A value
 * runs to the next '&' ('#' included: it may be part of a password). */
static void redact_query(const char *q, struct redacted *o)
{
    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        if (eq && secret_key(q, (size_t)(eq - q))) {
            put(o, q, (size_t)(eq + 1 - q));
            put(o, "***", 3);
        } else {
            put(o, q, len);
        }
        q += len;
        if (*q)
            put(o, q++, 1);
    }
}

/* "scheme://[user[:password]@]host...[?query]"; auth is after "://" (or
 * the start of a string that has no scheme). */
static void redact_url_form(const char *url, const char *auth, struct redacted *o)
{
    const char *at = userinfo_end(auth);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    const char *rest = auth;
    if (colon) {
        put(o, url, (size_t)(colon + 1 - url));
        put(o, "***", 3);
        rest = at;
    } else {
        put(o, url, (size_t)(auth - url));
    }
    const char *query = strchr(rest, '?');
    put(o, rest, query ? (size_t)(query + 1 - rest) : strlen(rest));
    if (query)
        redact_query(query + 1, o);
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Where the conninfo value at s ends: a single-quoted value at its closing
 * quote, any other at white space; a backslash escapes the next byte in
 * both (libpq's rules). */
static const char *conninfo_value_end(const char *s)
{
    bool quoted = *s == '\'';
    if (quoted)
        s++;
    while (*s && (quoted ? *s != '\'' : !is_space(*s))) {
        if (*s == '\\' && s[1])
            s++;
        s++;
    }
    return quoted && *s ? s + 1 : s;
}

/* libpq's "key=value key='quoted value' ..." form. */
static void redact_conninfo(const char *s, struct redacted *o)
{
    while (*s) {
        const char *start = s;
        while (is_space(*s))
            s++;
        const char *key = s;
        s += strcspn(s, "= \t\r\n");
        size_t key_len = (size_t)(s - key);
        while (is_space(*s))
            s++;
        if (*s != '=') {
            put(o, start, (size_t)(s - start));
            continue;
        }
        s++;
        while (is_space(*s))
            s++;
        put(o, start, (size_t)(s - start));
        const char *end = conninfo_value_end(s);
        if (secret_key(key, key_len))
            put(o, "***", 3);
        else
            put(o, s, (size_t)(end - s));
        s = end;
    }
}

void iot_config_redact_url(const char *url, char *out, size_t size)
{
    if (size == 0)
        return;
    out[0] = '\0';
    struct redacted o = {out, size, 0};
    size_t n = scheme_len(url);
    if (n) {
        redact_url_form(url, url + n, &o);
        return;
    }
    /* No scheme: libpq's key=value form, or something we cannot tell
     * ("user:pw@host?password=x"): both rules, one after the other. */
    char *first = malloc(size);
    if (!first) {
        put(&o, "(hidden)", 8);
        return;
    }
    struct redacted tmp = {first, size, 0};
    first[0] = '\0';
    redact_conninfo(url, &tmp);
    redact_url_form(first, first, &o);
    free(first);
}
