/* err.h — the one error enum of iotflowd.
 *
 * Every function that can fail returns an int: IOT_OK (0) or one of the
 * negative IOT_E* codes below. Backends map their drivers' errors to these at
 * their boundary; only src/http maps them to HTTP status codes. */
#ifndef IOT_UTIL_ERR_H
#define IOT_UTIL_ERR_H

enum iot_err {
    IOT_OK = 0,
    IOT_EINVAL = -1,       /* bad argument or input */
    IOT_ENOTFOUND = -2,    /* no such row/key */
    IOT_ECONFLICT = -3,    /* unique constraint / already exists */
    IOT_ETIMEOUT = -4,     /* backend did not answer in time */
    IOT_EUNAVAILABLE = -5, /* backend down or unreachable */
    IOT_ENOMEM = -6,       /* allocation failed */
    IOT_EAGAIN = -7,       /* partial input / try again later */
    IOT_EINTERNAL = -8,    /* bug or corrupted state */
    IOT_ELIMIT = -9,       /* a configured bound was hit */
};

/* Short, static, human-readable name of an error code. Never NULL. */
const char *iot_strerror(int err);

#endif
