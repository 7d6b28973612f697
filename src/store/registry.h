/* registry.h — the registry store interface: users, devices, groups and
 * group memberships (the relational part of IoTFlow).
 *
 * Implementations: SQLite (src/store/sqlite, the embedded default) and
 * PostgreSQL (src/store/postgres). Records are plain structs with fixed-size,
 * NUL-terminated text fields, so callers own every output and nothing needs
 * freeing. Every op may be called from any thread at any time; the backend
 * serialises internally. Callers use the iot_reg_* wrappers at the bottom,
 * never the slots. */
#ifndef IOT_STORE_REGISTRY_H
#define IOT_STORE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/store_metrics.h"
#include "util/err.h"

/* Byte limits of text fields (UTF-8 bytes, without the NUL). The API layer
 * rejects longer input with 400; backends may assume they hold. */
#define IOT_USER_ID_LEN 32 /* public user id: 32 lowercase hex chars */
#define IOT_USERNAME_MAX 80
#define IOT_EMAIL_MAX 120
#define IOT_PWHASH_MAX 160 /* libsodium crypto_pwhash_STRBYTES is 128 */
#define IOT_DEVICE_NAME_MAX 100
#define IOT_DESCRIPTION_MAX 1000
#define IOT_DEVICE_TYPE_MAX 50
#define IOT_STATUS_MAX 20
#define IOT_LOCATION_MAX 200
#define IOT_VERSION_MAX 20 /* firmware_version, hardware_version */
#define IOT_KEY_HASH_LEN 64 /* hex SHA-256 of an API key */
#define IOT_KEY_PREFIX_LEN 8 /* first characters of a key, shown masked */
#define IOT_GROUP_NAME_MAX 100
#define IOT_COLOR_LEN 7 /* "#RRGGBB" */
#define IOT_STATUS_BY_MAX 12 /* iot_device.status_set_by */

/* Times are Unix epoch milliseconds, UTC; 0 means "never" (JSON null). */

/* Usernames and emails are unique without regard to ASCII case: "ALICE"
 * and "alice" are one account, and user_get_by_username/_by_email find it
 * whichever case the caller types. The stored value keeps the case it was
 * registered with. Only ASCII letters fold (the same on every backend);
 * other characters compare byte for byte. */

struct iot_user {
    int64_t id; /* internal numeric id, assigned by the store */
    char user_id[IOT_USER_ID_LEN + 1];
    char username[IOT_USERNAME_MAX + 1];
    char email[IOT_EMAIL_MAX + 1];
    char password_hash[IOT_PWHASH_MAX + 1];
    bool is_active;
    bool is_admin;
    int64_t created_at;
    int64_t updated_at;
    int64_t last_login;
};

struct iot_device {
    int64_t id;      /* assigned by the store */
    int64_t user_id; /* internal id of the owner (iot_user.id) */
    char name[IOT_DEVICE_NAME_MAX + 1];
    char description[IOT_DESCRIPTION_MAX + 1];
    char device_type[IOT_DEVICE_TYPE_MAX + 1];
    char status[IOT_STATUS_MAX + 1]; /* active | inactive | maintenance */
    /* Who set `status` last: IOT_STATUS_BY_NEW (registered, never used or
     * switched since), _DEVICE (the device itself: first use, or its own
     * PUT /devices/config) or _ADMIN (a person through the admin API).
     * Empty means IOT_STATUS_BY_NEW on create, "unchanged" on update; any
     * other value is refused (IOT_EINVAL). See iot_device_held_off. */
    char status_set_by[IOT_STATUS_BY_MAX + 1];
    char location[IOT_LOCATION_MAX + 1];
    char firmware_version[IOT_VERSION_MAX + 1];
    char hardware_version[IOT_VERSION_MAX + 1];
    char api_key_hash[IOT_KEY_HASH_LEN + 1];     /* unique */
    char api_key_prefix[IOT_KEY_PREFIX_LEN + 1]; /* for masked display */
    int64_t created_at;
    int64_t updated_at;
    int64_t last_seen;
    /* The owner's users.is_active, read with the device in the same query
     * (no second round trip on the key-lookup hot path); ignored on
     * writes. A device whose owner is deactivated may not use its key. */
    bool owner_active;
};

#define IOT_STATUS_BY_NEW "new"
#define IOT_STATUS_BY_DEVICE "device"
#define IOT_STATUS_BY_ADMIN "admin"

/* True when a person switched the device off (status inactive or
 * maintenance, set through the admin API): the device may then neither
 * send nor read telemetry with its key, nor change its own status, until
 * a person switches it back on. A device that switched itself off, or was
 * never used, switches itself on again. */
static inline bool iot_device_held_off(const struct iot_device *d)
{
    return strcmp(d->status, "active") != 0 &&
           strcmp(d->status_set_by, IOT_STATUS_BY_ADMIN) == 0;
}

/* May the device's API key still be used to send or read telemetry (and
 * to keep a live stream open)? Its owner is active and no person has
 * switched it off. Streams revalidate with this on a fresh registry read
 * (iot_reg_device_get), which fills both fields. */
static inline bool iot_device_key_usable(const struct iot_device *d)
{
    return d->owner_active && !iot_device_held_off(d);
}

struct iot_group {
    int64_t id;      /* assigned by the store */
    int64_t user_id; /* internal id of the owner */
    char name[IOT_GROUP_NAME_MAX + 1];
    char description[IOT_DESCRIPTION_MAX + 1];
    char color[IOT_COLOR_LEN + 1]; /* "" when unset */
    int64_t created_at;
    int64_t updated_at;
    int64_t device_count; /* filled on reads; ignored on writes */
};

/* Paging: rows ordered by id ascending; limit 0 returns no rows but still
 * fills *total. */
struct iot_page {
    int64_t limit;
    int64_t offset;
};

/* Device filters; a NULL or 0 field matches everything. */
struct iot_device_filter {
    int64_t user_id;         /* owner */
    const char *status;      /* exact status */
    const char *device_type; /* exact type */
};

struct iot_device_stats {
    int64_t total, active, inactive, maintenance;
    int64_t online; /* active devices with last_seen >= the given time */
};

/* A registry's last_seen update, applied in batches by the ingest pipeline
 * (core/ingest.h), off the request path. */
struct iot_seen {
    int64_t device_id;
    int64_t last_seen;
};

/* Row callbacks: return 0 to go on, non-zero to stop the scan early (the op
 * then returns IOT_OK). The pointer is borrowed for the call only. */
typedef int (*iot_user_fn)(void *ctx, const struct iot_user *u);
typedef int (*iot_device_fn)(void *ctx, const struct iot_device *d);
typedef int (*iot_group_fn)(void *ctx, const struct iot_group *g);
/* A membership row: the device or group, and when it joined (ms). */
typedef int (*iot_member_fn)(void *ctx, const struct iot_device *d, int64_t added_at);
typedef int (*iot_device_group_fn)(void *ctx, const struct iot_group *g, int64_t added_at);

/* Pending telemetry clean-ups (ops version 3). The telemetry of a deleted
 * device or user lives in another store, maybe another server that is down
 * when the delete happens. So that it is never orphaned, device_delete and
 * user_delete record in the same transaction as the delete a row naming
 * what to remove; whoever removes it (src/core/cleanup.c) marks the row
 * done, or records the failed attempt and retries later. */
enum iot_cleanup_kind {
    IOT_CLEANUP_DEVICE = 1, /* target: the device's id (iot_tm_delete_device) */
    IOT_CLEANUP_USER = 2,   /* target: the user's internal id (iot_tm_delete_user,
                               which covers every device of theirs) */
};
#define IOT_CLEANUP_ERROR_MAX 200 /* bytes of last_error kept */
#define IOT_CLEANUP_PAGE_MAX 100  /* rows one cleanup_list may return */
/* A new row is due this long after its delete: the deleting request tries
 * at once itself, and a retry loop polling the rows should not race it.
 * Were the process to die between the two, the row is retried then. */
#define IOT_CLEANUP_GRACE_MS INT64_C(30000)

struct iot_pending_cleanup {
    enum iot_cleanup_kind kind;
    int64_t target_id;
    int64_t created_at; /* when the delete committed (ms) */
    int64_t attempts;   /* failed attempts so far */
    int64_t next_at;    /* due from then on (ms) */
    char last_error[IOT_CLEANUP_ERROR_MAX + 1]; /* "" before a failure */
};

/* Capability flags. */
#define IOT_REG_CAP_TRANSACTIONS 0x1u /* cascading deletes are atomic */

/* The interface. Unless noted, each op returns IOT_OK or a negative IOT_E*
 * code and leaves the store unchanged on failure. Lookups return
 * IOT_ENOTFOUND when no row matches; writes that would break a uniqueness
 * rule return IOT_ECONFLICT; a backend that cannot be reached returns
 * IOT_EUNAVAILABLE. New slots are appended, never reordered. */
struct iot_registry_ops {
    const char *name; /* "sqlite", "postgres" */
    unsigned version; /* 2: device_update_by_device appended; 3: the clean-ups */
    unsigned caps;    /* IOT_REG_CAP_* */

    /* Connect/open and migrate the schema to the latest version. `url` is the
     * DATABASE_URL (e.g. "sqlite:///path/db.sqlite" or a bare path). */
    int (*open)(const char *url, void **self);
    void (*close)(void *self); /* NULL self is a no-op */
    int (*ping)(void *self);   /* cheap health check */

    /* Users. user_create fills u->id and, if empty, u->user_id with 32 random
     * hex chars; sets created_at/updated_at to now if 0. Unique: username and
     * email (ignoring ASCII case, enforced by the database), user_id. The
     * _by_username/_by_email lookups ignore ASCII case. */
    int (*user_create)(void *self, struct iot_user *u);
    int (*user_get_by_id)(void *self, int64_t id, struct iot_user *out);
    int (*user_get_by_user_id)(void *self, const char *user_id, struct iot_user *out);
    int (*user_get_by_username)(void *self, const char *username, struct iot_user *out);
    int (*user_get_by_email)(void *self, const char *email, struct iot_user *out);
    /* Rewrites every mutable field of the row with u->id. */
    int (*user_update)(void *self, const struct iot_user *u);
    /* Deletes the user, their devices, groups and memberships, atomically;
     * version 3: and records the user's pending clean-up in the same
     * transaction (see cleanup_list). */
    int (*user_delete)(void *self, int64_t id);
    int (*user_list)(void *self, struct iot_page page, iot_user_fn fn, void *ctx, int64_t *total);

    /* Devices. device_create fills d->id and timestamps. Unique: (user_id,
     * name), api_key_hash. Every read fills owner_active. */
    int (*device_create)(void *self, struct iot_device *d);
    int (*device_get)(void *self, int64_t id, struct iot_device *out);
    int (*device_get_by_key_hash)(void *self, const char *key_hash, struct iot_device *out);
    /* Rewrites every mutable field (not id, user_id, created_at). */
    int (*device_update)(void *self, const struct iot_device *d);
    /* And its memberships; version 3: and records the device's pending
     * clean-up in the same transaction. */
    int (*device_delete)(void *self, int64_t id);
    int (*device_list)(void *self, const struct iot_device_filter *f, struct iot_page page,
                       iot_device_fn fn, void *ctx, int64_t *total);
    /* Sets last_seen = max(last_seen, s.last_seen) for each entry, in one
     * transaction. Unknown ids are ignored. */
    int (*device_touch)(void *self, const struct iot_seen *seen, size_t n);
    int (*device_stats)(void *self, int64_t online_since, struct iot_device_stats *out);

    /* Groups. Unique: (user_id, name). */
    int (*group_create)(void *self, struct iot_group *g);
    int (*group_get)(void *self, int64_t id, struct iot_group *out);
    int (*group_update)(void *self, const struct iot_group *g);
    int (*group_delete)(void *self, int64_t id); /* and its memberships */
    int (*group_list)(void *self, int64_t user_id, struct iot_page page, iot_group_fn fn,
                      void *ctx, int64_t *total);

    /* Memberships. member_add: IOT_ECONFLICT if present, IOT_ENOTFOUND if the
     * group or device does not exist; fills *added_at (may be NULL). */
    int (*member_add)(void *self, int64_t group_id, int64_t device_id, int64_t *added_at);
    int (*member_remove)(void *self, int64_t group_id, int64_t device_id);
    /* Devices in a group, filtered by f->status/f->device_type (f->user_id
     * ignored), ordered by membership order. */
    int (*group_devices)(void *self, int64_t group_id, const struct iot_device_filter *f,
                         struct iot_page page, iot_member_fn fn, void *ctx, int64_t *total);
    /* Groups a device belongs to, ordered by group id. */
    int (*device_groups)(void *self, int64_t device_id, iot_device_group_fn fn, void *ctx);

    /* Version 2. The device's own write (its first use, its PUT
     * /devices/config): sets status and updated_at (0: now) of row d->id
     * from *d, and location, firmware_version, hardware_version only where
     * `fields` has IOT_REG_OWN_LOCATION, _FIRMWARE, _HARDWARE (what the
     * device sent; a stale copy's other values are not written back) —
     * nothing else: not name, key or last_seen. status_set_by becomes
     * IOT_STATUS_BY_DEVICE when the status changes and stays as stored when
     * it does not; d->status_set_by is ignored. Atomic compare-and-set on
     * the stored row, not on the caller's (possibly cached, stale) copy: if
     * a person has switched the device off (iot_device_held_off on the
     * stored row) and d->status differs from the stored status, nothing is
     * written and it returns IOT_ECONFLICT (a write that keeps the admin's
     * status, e.g. new firmware while in maintenance, goes through and
     * keeps status_set_by "admin"); no row d->id: IOT_ENOTFOUND. */
    int (*device_update_by_device)(void *self, const struct iot_device *d, unsigned fields);

    /* Version 3: pending telemetry clean-ups (struct iot_pending_cleanup).
     * device_delete and user_delete insert one, in their transaction, with
     * attempts 0, created_at now and next_at now + IOT_CLEANUP_GRACE_MS
     * (the user's only, not one per device). Several processes may work on
     * the same rows: removing telemetry is idempotent, and an op on a row
     * another one finished answers IOT_ENOTFOUND, changing nothing. */
    /* Copies up to `max` (at most IOT_CLEANUP_PAGE_MAX: larger is clamped)
     * rows with next_at <= due_by into out, by next_at, then kind, then
     * target_id; *n = how many. INT64_MAX lists the first page of all. */
    int (*cleanup_list)(void *self, int64_t due_by, struct iot_pending_cleanup *out, size_t max,
                        size_t *n);
    /* Deletes the row (the telemetry is gone). */
    int (*cleanup_done)(void *self, enum iot_cleanup_kind kind, int64_t target_id);
    /* A failed attempt: attempts + 1, next_at, last_error = error (cut to
     * IOT_CLEANUP_ERROR_MAX bytes at a UTF-8 character boundary). */
    int (*cleanup_failed)(void *self, enum iot_cleanup_kind kind, int64_t target_id,
                          int64_t next_at, const char *error);
};

/* device_update_by_device's `fields`. */
#define IOT_REG_OWN_LOCATION 0x1u
#define IOT_REG_OWN_FIRMWARE 0x2u
#define IOT_REG_OWN_HARDWARE 0x4u

/* A registry handle: the ops and the backend's state. */
struct iot_registry {
    const struct iot_registry_ops *ops;
    void *self;
};

/* Compiled-in backends, looked up by URL scheme ("sqlite", "postgresql"). */
const struct iot_registry_ops *iot_registry_backend(const char *url);
/* Comma-separated names of compiled-in backends, for error messages. */
const char *iot_registry_backend_names(void);
int iot_registry_open(const char *url, struct iot_registry *out);
void iot_registry_close(struct iot_registry *reg);

/* ---- for backends ------------------------------------------------------------
 * Not for callers of the interface. The defaults the create ops above promise,
 * filled in one place so that every backend fills them alike; each works on
 * the backend's copy of the record, before the insert. */
/* user_create: a random 32-hex user_id when empty; created_at and updated_at
 * now when 0. */
void iot_reg_user_defaults(struct iot_user *u);
/* device_create: status "active" when empty (as the original service does),
 * status_set_by IOT_STATUS_BY_NEW when empty; created_at and updated_at now
 * when 0. */
void iot_reg_device_defaults(struct iot_device *d);
/* group_create: created_at and updated_at now when 0; device_count 0. */
void iot_reg_group_defaults(struct iot_group *g);
/* A clean-up kind as stored ("device", "user"), or NULL when not a kind;
 * and back (false for anything else). */
const char *iot_reg_cleanup_kind_name(enum iot_cleanup_kind kind);
bool iot_reg_cleanup_kind_parse(const char *name, enum iot_cleanup_kind *out);
/* How many bytes of `error` cleanup_failed keeps: at most
 * IOT_CLEANUP_ERROR_MAX, never cutting a UTF-8 character. */
size_t iot_reg_cleanup_error_len(const char *error);

/* Thin wrappers: call these, not the slots. */
static inline int iot_reg_ping(struct iot_registry *r) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->ping(r->self)); }
static inline int iot_reg_user_create(struct iot_registry *r, struct iot_user *u) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_create(r->self, u)); }
static inline int iot_reg_user_get_by_id(struct iot_registry *r, int64_t id, struct iot_user *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_get_by_id(r->self, id, o)); }
static inline int iot_reg_user_get_by_user_id(struct iot_registry *r, const char *uid, struct iot_user *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_get_by_user_id(r->self, uid, o)); }
static inline int iot_reg_user_get_by_username(struct iot_registry *r, const char *n, struct iot_user *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_get_by_username(r->self, n, o)); }
static inline int iot_reg_user_get_by_email(struct iot_registry *r, const char *e, struct iot_user *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_get_by_email(r->self, e, o)); }
static inline int iot_reg_user_update(struct iot_registry *r, const struct iot_user *u) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_update(r->self, u)); }
static inline int iot_reg_user_delete(struct iot_registry *r, int64_t id) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_delete(r->self, id)); }
static inline int iot_reg_user_list(struct iot_registry *r, struct iot_page p, iot_user_fn fn, void *ctx, int64_t *total) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->user_list(r->self, p, fn, ctx, total)); }
static inline int iot_reg_device_create(struct iot_registry *r, struct iot_device *d) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_create(r->self, d)); }
static inline int iot_reg_device_get(struct iot_registry *r, int64_t id, struct iot_device *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_get(r->self, id, o)); }
static inline int iot_reg_device_get_by_key_hash(struct iot_registry *r, const char *h, struct iot_device *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_get_by_key_hash(r->self, h, o)); }
static inline int iot_reg_device_update(struct iot_registry *r, const struct iot_device *d) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_update(r->self, d)); }
static inline int iot_reg_device_delete(struct iot_registry *r, int64_t id) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_delete(r->self, id)); }
static inline int iot_reg_device_list(struct iot_registry *r, const struct iot_device_filter *f, struct iot_page p, iot_device_fn fn, void *ctx, int64_t *total) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_list(r->self, f, p, fn, ctx, total)); }
static inline int iot_reg_device_touch(struct iot_registry *r, const struct iot_seen *s, size_t n) { if (!n) return 0; IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_touch(r->self, s, n)); }
static inline int iot_reg_device_stats(struct iot_registry *r, int64_t since, struct iot_device_stats *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_stats(r->self, since, o)); }
static inline int iot_reg_group_create(struct iot_registry *r, struct iot_group *g) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->group_create(r->self, g)); }
static inline int iot_reg_group_get(struct iot_registry *r, int64_t id, struct iot_group *o) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->group_get(r->self, id, o)); }
static inline int iot_reg_group_update(struct iot_registry *r, const struct iot_group *g) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->group_update(r->self, g)); }
static inline int iot_reg_group_delete(struct iot_registry *r, int64_t id) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->group_delete(r->self, id)); }
static inline int iot_reg_group_list(struct iot_registry *r, int64_t uid, struct iot_page p, iot_group_fn fn, void *ctx, int64_t *total) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->group_list(r->self, uid, p, fn, ctx, total)); }
static inline int iot_reg_member_add(struct iot_registry *r, int64_t g, int64_t d, int64_t *at) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->member_add(r->self, g, d, at)); }
static inline int iot_reg_member_remove(struct iot_registry *r, int64_t g, int64_t d) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->member_remove(r->self, g, d)); }
static inline int iot_reg_group_devices(struct iot_registry *r, int64_t g, const struct iot_device_filter *f, struct iot_page p, iot_member_fn fn, void *ctx, int64_t *total) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->group_devices(r->self, g, f, p, fn, ctx, total)); }
static inline int iot_reg_device_groups(struct iot_registry *r, int64_t d, iot_device_group_fn fn, void *ctx) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_groups(r->self, d, fn, ctx)); }
/* Required (there is no safe fallback: a whole-row device_update would
 * undo an admin's switch-off); a backend without it fails here. */
static inline int iot_reg_device_update_by_device(struct iot_registry *r, const struct iot_device *d, unsigned fields) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->device_update_by_device ? r->ops->device_update_by_device(r->self, d, fields) : IOT_EINTERNAL); }
/* Version 3; IOT_EINVAL (unsupported) from a backend without them. */
static inline int iot_reg_cleanup_list(struct iot_registry *r, int64_t due_by, struct iot_pending_cleanup *out, size_t max, size_t *n) { *n = 0; IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->version >= 3 && r->ops->cleanup_list ? r->ops->cleanup_list(r->self, due_by, out, max, n) : IOT_EINVAL); }
static inline int iot_reg_cleanup_done(struct iot_registry *r, enum iot_cleanup_kind kind, int64_t id) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->version >= 3 && r->ops->cleanup_done ? r->ops->cleanup_done(r->self, kind, id) : IOT_EINVAL); }
static inline int iot_reg_cleanup_failed(struct iot_registry *r, enum iot_cleanup_kind kind, int64_t id, int64_t next_at, const char *error) { IOT_STORE_TIMED(IOT_STORE_REGISTRY, r->ops, r->ops->version >= 3 && r->ops->cleanup_failed ? r->ops->cleanup_failed(r->self, kind, id, next_at, error ? error : "") : IOT_EINVAL); }

#endif
