/* docs_mongo.c — the MongoDB documents store's ops table, open/close, ping,
 * the indexes made at open, the client pool and the mapping of libmongoc's
 * errors to IOT_E* codes. The layout of a stored document is in
 * docs_mongo_int.h. */
#include "store/mongo/docs_mongo.h"

#include <stdlib.h>
#include <string.h>

#include "store/mongo/docs_mongo_int.h"
#include "util/err.h"
#include "util/log.h"

/* ---- libmongoc, once per process ---- */

/* libmongoc's own log lines go through ours (escaped, leveled); its
 * chatter below warnings is dropped, and so is its warning that the server
 * has no endSessions (FerretDB has none; libmongoc sends it at close). */
static void mongoc_log_to_ours(mongoc_log_level_t level, const char *domain, const char *message,
                               void *user)
{
    (void)user;
    if (strstr(message, "endSessions"))
        return;
    if (level <= MONGOC_LOG_LEVEL_CRITICAL)
        IOT_ERROR("libmongoc %s: %s", domain, message);
    else if (level == MONGOC_LOG_LEVEL_WARNING)
        IOT_WARN("libmongoc %s: %s", domain, message);
}

static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;

static void init_mongoc(void)
{
    mongoc_init();
    mongoc_log_set_handler(mongoc_log_to_ours, NULL);
}

/* ---- clients ---- */

void dmongo_acquire(struct dmongo *m, enum iot_docs_coll coll, struct dmongo_conn *c)
{
    c->client = mongoc_client_pool_pop(m->pool);
    c->coll = mongoc_client_get_collection(c->client, m->db, iot_docs_coll_name(coll));
}

void dmongo_release(struct dmongo *m, struct dmongo_conn *c)
{
    mongoc_collection_destroy(c->coll);
    mongoc_client_pool_push(m->pool, c->client);
    c->coll = NULL;
    c->client = NULL;
}

pthread_mutex_t *dmongo_stripe(struct dmongo *m, enum iot_docs_coll coll, const char *id)
{
    uint32_t h = 2166136261u ^ (uint32_t)coll; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &m->stripes[h % DMONGO_STRIPES];
}

/* ---- errors ---- */

bool dmongo_is_duplicate(const bson_error_t *e)
{
    if ((e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_WRITE_CONCERN ||
         e->domain == MONGOC_ERROR_COLLECTION) &&
        (e->code == 11000 || e->code == 11001))
        return true;
    /* FerretDB 1.24 maps a unique index's refusal to 11000 on inserts
     * only; an update that hits one answers with SQLite's own words. */
    return strstr(e->message, "E11000") || strstr(e->message, "UNIQUE constraint failed");
}

/* A server's error code that means "not now" rather than "never". */
static int server_code_error(uint32_t code)
{
    switch (code) {
    case 50:  /* MaxTimeMSExpired */
    case 89:  /* NetworkTimeout */
    case 202: /* NetworkInterfaceExceededTimeLimit */
    case 262: /* ExceededTimeLimit */
        return IOT_ETIMEOUT;
    case 6:     /* HostUnreachable */
    case 7:     /* HostNotFound */
    case 91:    /* ShutdownInProgress */
    case 189:   /* PrimarySteppedDown */
    case 9001:  /* SocketException */
    case 10107: /* NotWritablePrimary */
    case 11600: /* InterruptedAtShutdown */
    case 11602: /* InterruptedDueToReplStateChange */
    case 13435: /* NotPrimaryNoSecondaryOk */
    case 13436: /* NotPrimaryOrSecondary */
        return IOT_EUNAVAILABLE;
    default:
        return IOT_EINTERNAL;
    }
}

static int map_error(const bson_error_t *e)
{
    if (dmongo_is_duplicate(e))
        return IOT_ECONFLICT;
    switch (e->domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
        return IOT_EUNAVAILABLE;
    case MONGOC_ERROR_STREAM:
        /* libmongoc words a read timeout and a closed connection alike
         * ("socket error or timeout"); only an explicit one is a timeout.
         * Both are answered 503 either way. */
        return strstr(e->message, "timed out") ? IOT_ETIMEOUT : IOT_EUNAVAILABLE;
    case MONGOC_ERROR_CLIENT:
        return e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE ? IOT_EUNAVAILABLE : IOT_EINTERNAL;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_WRITE_CONCERN:
        return server_code_error(e->code);
    default:
        return IOT_EINTERNAL;
    }
}

int dmongo_error(const bson_error_t *e, const char *what, enum iot_docs_coll coll)
{
    int rc = map_error(e);
    if (rc != IOT_ECONFLICT)
        IOT_WARN("documents store (mongodb): %s on %s: %s (domain %u, code %u)", what,
                 iot_docs_coll_name(coll), e->message, e->domain, e->code);
    return rc;
}

/* ---- indexes ---- */

struct index_spec {
    const char *name;
    const char *fields[4]; /* ascending, NULL-terminated */
    bool unique;
};

/* Every collection gets the same indexes (a few are unused by some
 * collections; they cost little at our sizes). Only plain ascending keys:
 * FerretDB refuses partialFilterExpression and ignores sparse, so the
 * rules' unique (user_id, k1) is a plain unique index, fine since every
 * rule has a name. */
static const struct index_spec common_indexes[] = {
    {"user_ts", {"user_id", "ts_ms", "_id"}, false},
    {"device_ts", {"device_id", "ts_ms", "_id"}, false},
    {"k1", {"k1"}, false},
    {"tags", {"tags"}, false},
    {"lat_lon", {"lat", "lon"}, false},
};
static const struct index_spec rules_unique = {"user_k1", {"user_id", "k1"}, true};

/* {createIndexes: coll, indexes: [{key: {field: 1, …}, name, unique?}]} */
static void index_command(bson_t *cmd, enum iot_docs_coll coll, const struct index_spec *spec)
{
    bson_t indexes, index, fields;
    BSON_APPEND_UTF8(cmd, "createIndexes", iot_docs_coll_name(coll));
    BSON_APPEND_ARRAY_BEGIN(cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &fields);
    for (size_t f = 0; f < 4 && spec->fields[f]; f++)
        BSON_APPEND_INT32(&fields, spec->fields[f], 1);
    bson_append_document_end(&index, &fields);
    BSON_APPEND_UTF8(&index, "name", spec->name);
    if (spec->unique)
        BSON_APPEND_BOOL(&index, "unique", true);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(cmd, &indexes);
}

/* createIndexes is idempotent: an index already there with the same name
 * and keys is left alone. One index per command: FerretDB 1.24 panics
 * (and drops the connection) when one command names several indexes of
 * which more than one already exist. */
static int create_index(struct dmongo_conn *c, enum iot_docs_coll coll,
                        const struct index_spec *spec)
{
    bson_t cmd = BSON_INITIALIZER;
    index_command(&cmd, coll, spec);
    bson_error_t err;
    bool ok = mongoc_collection_write_command_with_opts(c->coll, &cmd, NULL, NULL, &err);
    bson_destroy(&cmd);
    return ok ? IOT_OK : dmongo_error(&err, "createIndexes", coll);
}

static int create_indexes(struct dmongo *m, enum iot_docs_coll coll)
{
    struct dmongo_conn c;
    dmongo_acquire(m, coll, &c);
    int rc = IOT_OK;
    for (size_t i = 0; i < sizeof common_indexes / sizeof common_indexes[0] && rc == IOT_OK; i++)
        rc = create_index(&c, coll, &common_indexes[i]);
    if (rc == IOT_OK && coll == IOT_DOCS_RULES)
        rc = create_index(&c, coll, &rules_unique);
    dmongo_release(m, &c);
    return rc;
}

/* ---- open, close, ping ---- */

static void dmongo_close(void *self)
{
    struct dmongo *m = self;
    if (!m)
        return;
    if (m->pool)
        mongoc_client_pool_destroy(m->pool);
    for (size_t i = 0; i < DMONGO_STRIPES; i++)
        pthread_mutex_destroy(&m->stripes[i]);
    free(m);
}

static int dmongo_ping(void *self)
{
    struct dmongo *m = self;
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    mongoc_client_t *client = mongoc_client_pool_pop(m->pool);
    bson_error_t err;
    bool ok = mongoc_client_command_simple(client, m->db, &cmd, NULL, NULL, &err);
    mongoc_client_pool_push(m->pool, client);
    bson_destroy(&cmd);
    return ok ? IOT_OK : dmongo_error(&err, "ping", IOT_DOCS_CONFIGS);
}

static struct dmongo *dmongo_new(mongoc_uri_t *uri, const char *db)
{
    struct dmongo *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (size_t i = 0; i < DMONGO_STRIPES; i++)
        pthread_mutex_init(&m->stripes[i], NULL);
    snprintf(m->db, sizeof m->db, "%s", db);
    bson_error_t err;
    m->pool = mongoc_client_pool_new_with_error(uri, &err);
    if (!m->pool) {
        IOT_ERROR("documents store (mongodb): %s", err.message);
        dmongo_close(m);
        return NULL;
    }
    mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
    return m;
}

static int dmongo_open(const char *url, void **self)
{
    *self = NULL;
    pthread_once(&mongoc_once, init_mongoc);
    mongoc_uri_t *uri;
    char db[DMONGO_DB_MAX + 1], why[256];
    int rc = dmongo_url_parse(url, &uri, db, why, sizeof why);
    if (rc) {
        IOT_ERROR("documents store (mongodb): %s", why);
        return rc;
    }
    struct dmongo *m = dmongo_new(uri, db);
    mongoc_uri_destroy(uri);
    if (!m)
        return IOT_EINVAL;
    for (int coll = 0; coll < IOT_DOCS_N_COLLS && rc == IOT_OK; coll++)
        rc = create_indexes(m, (enum iot_docs_coll)coll);
    if (rc) {
        dmongo_close(m);
        return rc;
    }
    *self = m;
    return IOT_OK;
}

const struct iot_docs_ops iot_docs_mongo = {
    .name = "mongodb",
    .version = 1,
    .caps = IOT_DOCS_CAP_SHARED,
    .open = dmongo_open,
    .close = dmongo_close,
    .ping = dmongo_ping,
    .put = dmongo_put,
    .insert_many = dmongo_insert_many,
    .get = dmongo_get,
    .remove = dmongo_remove,
    .find = dmongo_find,
    .count_by = dmongo_count_by,
    .delete_where = dmongo_delete_where,
};
