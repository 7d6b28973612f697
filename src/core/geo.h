/* geo.h — the geometry of location searches: great-circle distance, and
 * the latitude/longitude boxes that cover a circle on the sphere (the
 * store filters on boxes; the exact distance filters what they return).
 *
 * Boxes never cross the antimeridian: a region that does is split in two,
 * one each side. Pure functions, thread-safe. */
#ifndef IOT_CORE_GEO_H
#define IOT_CORE_GEO_H

#include <stdbool.h>
#include <stddef.h>

#define IOT_GEO_EARTH_RADIUS_M 6371008.8 /* the mean radius (IUGG) */
/* Half the equator: every point of the sphere lies within this distance. */
#define IOT_GEO_RADIUS_MAX_M 20037509.0

struct iot_geo_box {
    double lat_min, lat_max; /* [-90, 90], lat_min <= lat_max */
    double lon_min, lon_max; /* [-180, 180], lon_min <= lon_max */
};

bool iot_geo_lat_valid(double lat);
bool iot_geo_lon_valid(double lon);

/* Haversine distance in metres on the mean-radius sphere. */
double iot_geo_distance_m(double lat1, double lon1, double lat2, double lon2);

/* The boxes (1 or 2, written to out) covering every point within radius_m
 * of (lat, lon): the whole band of longitudes when the circle holds a pole,
 * two boxes when it crosses the antimeridian. Returns how many. */
size_t iot_geo_circle_boxes(double lat, double lon, double radius_m, struct iot_geo_box out[2]);

/* The boxes of a region given by its corners; lon_min > lon_max means the
 * region crosses the antimeridian (two boxes). Returns how many. */
size_t iot_geo_region_boxes(double lat_min, double lon_min, double lat_max, double lon_max,
                            struct iot_geo_box out[2]);

#endif
