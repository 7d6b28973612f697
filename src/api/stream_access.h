/* stream_access.h — what a live stream was opened with, and whether that
 * still holds.
 *
 * A stream keeps its grant: the credential it was opened with (secrets
 * hashed), the user it acts for and its device. iot_stream_grants_check
 * decides a batch of grants again the way the request was first decided —
 * the session still exists, the user is still active and still the owner
 * (or an admin), the device still exists and still has that key — and looks
 * each session, user and device up once per batch however many streams
 * share it. It does store I/O: call it with no stream lock held (the
 * streams' ticker thread does). Thread-safe, no state. */
#ifndef IOT_API_STREAM_ACCESS_H
#define IOT_API_STREAM_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/authn.h"
#include "api/credential.h"
#include "http/request.h"
#include "store/registry.h"

struct iot_app;

struct iot_stream_grant {
    struct iot_credential cred;
    int64_t device_id;                  /* 0: a stream of a user's data, no device */
    bool sees_all;                      /* with no device: every user's data (an admin's) */
    int64_t user_id;                    /* the acting user's internal id; 0 for admin token / key */
    char user_pub[IOT_USER_ID_LEN + 1]; /* and public id */
};

/* The grant of a stream request that iot_authn_device_reader_as accepted
 * with principal p (NULL when a device key was used) for device d. */
void iot_stream_grant_of(struct iot_req *r, const struct iot_principal *p,
                         const struct iot_device *d, struct iot_stream_grant *out);

/* The grant of a stream of a user's own data (or, for the admin, of all
 * users': sees_all), with no device: p as iot_authn_any accepted it. Its
 * re-checks are those of the user (session, active) and, with sees_all,
 * that the user is still an admin. */
void iot_stream_grant_of_user(struct iot_req *r, const struct iot_principal *p,
                              struct iot_stream_grant *out);

/* Why a stream was ended (the `reason` of its final `revoked` event). */
#define IOT_REVOKED_DEVICE_DELETED "device_deleted"
#define IOT_REVOKED_KEY "key_revoked"          /* the key was rotated */
#define IOT_REVOKED_DEVICE_REFUSED "device_refused"
#define IOT_REVOKED_USER_DELETED "user_deleted"
#define IOT_REVOKED_USER_INACTIVE "user_inactive"
#define IOT_REVOKED_SESSION "session_ended"    /* logout, expiry, password change */
#define IOT_REVOKED_ACCESS "access_revoked"    /* no longer the owner or an admin */

/* For each of n grants, reasons[i] = NULL (still valid, or not decidable:
 * a store failed) or one of the IOT_REVOKED_* strings (static). Returns
 * IOT_OK, or the first store error: a grant that could not be checked is
 * kept until the next batch, so a store outage never ends every stream. */
int iot_stream_grants_check(struct iot_app *app, const struct iot_stream_grant *g, size_t n,
                            const char **reasons);

/* What the stores said about one grant: rc IOT_OK (the pointer is set),
 * IOT_ENOTFOUND, or a store error (undecidable). `user` is the acting user
 * of a user grant; `session_user` the public id a session grant's session
 * maps to. */
struct iot_stream_facts {
    int device_rc;
    const struct iot_device *device;
    int user_rc;
    const struct iot_user *user;
    int session_rc;
    const char *session_user;
};

/* The decision for one grant from its facts: NULL or an IOT_REVOKED_*.
 * Pure; iot_stream_grants_check uses it, tests call it directly. */
const char *iot_stream_grant_verdict(const struct iot_stream_grant *g,
                                     const struct iot_stream_facts *f);

#endif
