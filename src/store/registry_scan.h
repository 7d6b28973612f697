/* registry_scan.h — the paged listings of the SQL registry backends (SQLite
 * and PostgreSQL): the scan kinds and filter bits, the request an op fills
 * in, the row a backend copies out, and the loop that fetches rows chunk by
 * chunk and hands each one to the caller's callback.
 *
 * Shared by both backends because the paging rules are the interface's, not
 * a backend's: limit and offset are checked alike, a callback may stop early,
 * a listing under a parent fails when the parent is missing, and rows go to
 * callbacks with no connection held. Only fetching one chunk (SQL dialect,
 * connections, snapshots) is backend code. Not part of the registry
 * interface: only src/store/<backend>/registry_* include it. Stateless; the
 * request and rows are the caller's, and any thread may run a scan. */
#ifndef IOT_STORE_REGISTRY_SCAN_H
#define IOT_STORE_REGISTRY_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "store/registry.h"

/* What a scan lists; each backend keeps one SQL form per kind. */
enum iot_reg_scan_kind {
    IOT_REG_SCAN_USERS,
    IOT_REG_SCAN_DEVICES,
    IOT_REG_SCAN_GROUPS,
    IOT_REG_SCAN_GROUP_DEVICES, /* devices in the group `parent` */
    IOT_REG_SCAN_DEVICE_GROUPS, /* groups the device `parent` is in */
    IOT_REG_SCAN__COUNT
};

/* Optional filters, as bits: each combination is its own statement, so that
 * it can use its own index. */
enum {
    IOT_REG_FILTER_UID = 1,    /* owner's user_id == uid */
    IOT_REG_FILTER_STATUS = 2, /* device status == status */
    IOT_REG_FILTER_TYPE = 4,   /* device_type == type */
    IOT_REG_FILTER_COMBOS = 8  /* number of combinations */
};

/* The caller's row callback, one member per kind (member for GROUP_DEVICES,
 * device_group for DEVICE_GROUPS). */
union iot_reg_row_fn {
    iot_user_fn user;
    iot_device_fn device;
    iot_group_fn group;
    iot_member_fn member;
    iot_device_group_fn device_group;
};

/* One listing, as an op asks for it. Strings are borrowed from the caller
 * for the length of the scan. */
struct iot_reg_scan {
    enum iot_reg_scan_kind kind;
    unsigned mask;             /* IOT_REG_FILTER_* in use */
    int64_t parent;            /* group id (GROUP_DEVICES) or device id (DEVICE_GROUPS) */
    int64_t uid;               /* with IOT_REG_FILTER_UID */
    const char *status, *type; /* with IOT_REG_FILTER_STATUS / _TYPE: whole strings */
    struct iot_page page;
    int64_t *total; /* NULL: not wanted */
    union iot_reg_row_fn fn;
    bool has_fn;
    void *ctx;
};

/* A row copied out of the database, to be delivered after the connection
 * went back. */
struct iot_reg_row {
    int64_t key;      /* keyset cursor: the next chunk starts after it */
    int64_t added_at; /* membership time, or 0 */
    union {
        struct iot_user u;   /* USERS */
        struct iot_device d; /* DEVICES, GROUP_DEVICES */
        struct iot_group g;  /* GROUPS, DEVICE_GROUPS */
    } v;
};

/* One connection hold's worth of rows, filled by a backend's fetch. */
struct iot_reg_chunk {
    const struct iot_reg_scan *sc;
    bool first;     /* also check the parent and count *total, on the rows' snapshot */
    int64_t after;  /* keyset cursor: rows with a key above it (INT64_MIN at first) */
    int64_t offset; /* rows to skip (the page's offset at first, then 0) */
    int64_t want;   /* rows wanted; 0 is possible on the first chunk */
    struct iot_reg_row *rows; /* room for `want` rows */
    int64_t n;                /* out: rows copied, at most want */
};

/* A backend's fetch of one chunk: sets ch->n (0 first), fills
 * ch->rows[0..n) by ascending key; on the first chunk, IOT_ENOTFOUND when
 * the parent row does not exist and *total counted. IOT_OK or an IOT_E*. */
typedef int (*iot_reg_fetch_fn)(void *backend, struct iot_reg_chunk *ch);

/* Whether a scan kind lists rows under a parent that must exist. */
bool iot_reg_scan_has_parent(enum iot_reg_scan_kind kind);

/* Sets the status/type filters of f on sc, and with with_uid the owner
 * filter; NULL or empty fields filter nothing. */
void iot_reg_scan_filter(struct iot_reg_scan *sc, const struct iot_device_filter *f,
                         bool with_uid);

/* Runs a listing: IOT_EINVAL for a negative limit or offset; otherwise
 * fetches chunks of at most chunk_rows rows with fetch(backend, …) and,
 * between fetches (no connection held), delivers each row to the callback,
 * until the page is full, the rows run out or the callback stops it.
 * Returns IOT_ENOMEM or the first fetch error, else IOT_OK. */
int iot_reg_scan_run(const struct iot_reg_scan *sc, int64_t chunk_rows, iot_reg_fetch_fn fetch,
                     void *backend);

#endif
