/* metadata.h — device metadata in the documents store (IOT_DOCS_METADATA):
 * tags, free attributes and a location per device, one document with id
 * "d<device_id>" whose header carries the tags and the location, so that
 * the store finds devices by tag and by box; and the searches over them.
 *
 * The stored body is what the API answers:
 *   {"device_id":N,"tags":[...],"attributes":{...},
 *    "location":{"latitude":..,"longitude":..} | null,"updated_at":"ISO"}
 * Changes of one device's tags are read-modify-write at the exact rev with
 * a retry on IOT_ECONFLICT, safe across instances. Pure logic on struct
 * iot_docs, no HTTP; thread-safe as the store is. Every json_t * returned
 * is a new reference owned by the caller. */
#ifndef IOT_CORE_METADATA_H
#define IOT_CORE_METADATA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/geo.h"
#include "store/docs.h"

#define IOT_METADATA_ATTRIBUTES_MAX (16 * 1024) /* bytes of the attributes' compact JSON */
#define IOT_METADATA_TAG_MAX IOT_DOCS_KEY_MAX   /* bytes of a tag */
#define IOT_METADATA_TAGS_MAX IOT_DOCS_TAGS_MAX /* tags per device */

/* A tag: 1..IOT_METADATA_TAG_MAX bytes of UTF-8 without control or
 * invisible characters (what the store indexes). */
bool iot_metadata_tag_valid(const char *tag);

/* Checks a metadata object as a client sends it ({tags, attributes,
 * location}; an absent one is empty: [], {}, null; "device_id" and
 * "updated_at" are read-only and ignored) and returns it normalised with
 * the three keys. NULL on bad input, with the reason in why; *too_large
 * tells that the attributes were over their size (413, not 400). */
json_t *iot_metadata_parse(const json_t *in, bool *too_large, char *why, size_t why_size);

/* What a device without metadata answers. */
json_t *iot_metadata_empty(int64_t device_id);

/* The device's stored metadata (the parsed body) and its rev;
 * IOT_ENOTFOUND when it has none. */
int iot_metadata_load(struct iot_docs *d, int64_t device_id, json_t **meta, int64_t *rev);

/* Writes normalised metadata (iot_metadata_parse's shape) with put's
 * expectation `expect_rev`; on success *body (may be NULL) is the stored
 * text (caller frees). */
int iot_metadata_store(struct iot_docs *d, int64_t device_id, int64_t owner_id, const json_t *meta,
                       int64_t expect_rev, int64_t now_ms, char **body);

/* Adds a tag (nothing changes when present: *added false) or removes one
 * (IOT_ENOTFOUND when absent); IOT_ELIMIT when adding to a device that
 * has IOT_METADATA_TAGS_MAX already, IOT_EAGAIN when concurrent writers
 * kept winning. *body (may be NULL) receives the stored text afterwards. */
int iot_metadata_tag_add(struct iot_docs *d, int64_t device_id, int64_t owner_id, const char *tag,
                         int64_t now_ms, bool *added, char **body);
int iot_metadata_tag_remove(struct iot_docs *d, int64_t device_id, int64_t owner_id,
                            const char *tag, int64_t now_ms, char **body);

/* A search: the documents matching `base` (user_id and tag; order and
 * cursor as in the store: newest update first, strictly after the cursor
 * when has_after) that lie in one of the boxes (none: no location
 * criterion), and within radius_m of the centre when `circle` is set.
 * Documents reach fn one at a time in the store's order, with nothing of
 * the store held (fn may call other stores); fn returns non-zero to stop.
 * Two boxes (the antimeridian) are read as two queries merged in order. */
struct iot_metadata_search {
    struct iot_docs_filter base;
    struct iot_geo_box boxes[2];
    size_t n_boxes;
    bool circle;
    double lat, lon, radius_m;
};
/* fn's extra argument: the distance to the centre (0 without circle). */
typedef int (*iot_metadata_found_fn)(void *ctx, const struct iot_doc *doc, double distance_m);
int iot_metadata_search(struct iot_docs *d, const struct iot_metadata_search *s,
                        iot_metadata_found_fn fn, void *ctx);

#endif
