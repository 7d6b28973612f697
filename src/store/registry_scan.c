/* registry_scan.c — the paging loop of the SQL registry backends' listings,
 * shared by SQLite and PostgreSQL so that both page, stop and deliver alike
 * (see registry_scan.h); each backend supplies only the fetch of one chunk.
 * Later chunks continue after the last key seen (keyset), not by OFFSET. */
#include "store/registry_scan.h"

#include <stdlib.h>

#include "util/err.h"

bool iot_reg_scan_has_parent(enum iot_reg_scan_kind kind)
{
    return kind == IOT_REG_SCAN_GROUP_DEVICES || kind == IOT_REG_SCAN_DEVICE_GROUPS;
}

void iot_reg_scan_filter(struct iot_reg_scan *sc, const struct iot_device_filter *f,
                         bool with_uid)
{
    if (!f)
        return;
    if (with_uid && f->user_id) {
        sc->mask |= IOT_REG_FILTER_UID;
        sc->uid = f->user_id;
    }
    if (f->status && f->status[0]) {
        sc->mask |= IOT_REG_FILTER_STATUS;
        sc->status = f->status;
    }
    if (f->device_type && f->device_type[0]) {
        sc->mask |= IOT_REG_FILTER_TYPE;
        sc->type = f->device_type;
    }
}

/* Hands one row to the callback of its kind; non-zero stops the scan. */
static int emit_row(const struct iot_reg_scan *sc, const struct iot_reg_row *r)
{
    switch (sc->kind) {
    case IOT_REG_SCAN_USERS: return sc->fn.user(sc->ctx, &r->v.u);
    case IOT_REG_SCAN_DEVICES: return sc->fn.device(sc->ctx, &r->v.d);
    case IOT_REG_SCAN_GROUPS: return sc->fn.group(sc->ctx, &r->v.g);
    case IOT_REG_SCAN_GROUP_DEVICES: return sc->fn.member(sc->ctx, &r->v.d, r->added_at);
    default: return sc->fn.device_group(sc->ctx, &r->v.g, r->added_at);
    }
}

int iot_reg_scan_run(const struct iot_reg_scan *sc, int64_t chunk_rows, iot_reg_fetch_fn fetch,
                     void *backend)
{
    if (sc->page.limit < 0 || sc->page.offset < 0)
        return IOT_EINVAL;
    int64_t left = sc->has_fn ? sc->page.limit : 0;
    if (left == 0 && !sc->total && !iot_reg_scan_has_parent(sc->kind))
        return IOT_OK; /* nothing to deliver, count or check */
    struct iot_reg_row *rows = NULL;
    if (left > 0) {
        rows = malloc((size_t)(left < chunk_rows ? left : chunk_rows) * sizeof *rows);
        if (!rows)
            return IOT_ENOMEM;
    }
    struct iot_reg_chunk ch = {.sc = sc, .first = true, .after = INT64_MIN,
                               .offset = sc->page.offset, .rows = rows};
    int rc;
    for (;;) {
        ch.want = left < chunk_rows ? left : chunk_rows;
        rc = fetch(backend, &ch);
        if (rc)
            break;
        bool stop = false;
        for (int64_t i = 0; i < ch.n && !stop; i++)
            stop = emit_row(sc, &rows[i]) != 0;
        left -= ch.n;
        if (stop || ch.n < ch.want || left == 0)
            break;
        ch.first = false;
        ch.after = rows[ch.n - 1].key;
        ch.offset = 0;
    }
    free(rows);
    return rc;
}
