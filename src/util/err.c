#include "util/err.h"

const char *iot_strerror(int err)
{
    switch (err) {
    case IOT_OK: return "ok";
    case IOT_EINVAL: return "invalid argument";
    case IOT_ENOTFOUND: return "not found";
    case IOT_ECONFLICT: return "conflict";
    case IOT_ETIMEOUT: return "timeout";
    case IOT_EUNAVAILABLE: return "unavailable";
    case IOT_ENOMEM: return "out of memory";
    case IOT_EAGAIN: return "try again";
    case IOT_EINTERNAL: return "internal error";
    case IOT_ELIMIT: return "limit reached";
    default: return "unknown error";
    }
}
