/* geo.c — distances and covering boxes for location searches (geo.h). */
#include "core/geo.h"

#include <math.h>

#define DEG (M_PI / 180.0)
/* Boxes grow by this much (about 0.1 mm) so that rounding never leaves a
 * point on the circle's edge outside them; the exact distance filters. */
#define PAD_DEG 1e-9

bool iot_geo_lat_valid(double lat) { return isfinite(lat) && lat >= -90.0 && lat <= 90.0; }
bool iot_geo_lon_valid(double lon) { return isfinite(lon) && lon >= -180.0 && lon <= 180.0; }

double iot_geo_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    double dlat = (lat2 - lat1) * DEG, dlon = (lon2 - lon1) * DEG;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * DEG) * cos(lat2 * DEG) * sin(dlon / 2) * sin(dlon / 2);
    if (h > 1.0) /* rounding, near antipodes */
        h = 1.0;
    return 2.0 * IOT_GEO_EARTH_RADIUS_M * asin(sqrt(h));
}

size_t iot_geo_region_boxes(double lat_min, double lon_min, double lat_max, double lon_max,
                            struct iot_geo_box out[2])
{
    if (lon_min <= lon_max) {
        out[0] = (struct iot_geo_box){lat_min, lat_max, lon_min, lon_max};
        return 1;
    }
    out[0] = (struct iot_geo_box){lat_min, lat_max, lon_min, 180.0};
    out[1] = (struct iot_geo_box){lat_min, lat_max, -180.0, lon_max};
    return 2;
}

size_t iot_geo_circle_boxes(double lat, double lon, double radius_m, struct iot_geo_box out[2])
{
    double angle = radius_m / IOT_GEO_EARTH_RADIUS_M; /* radians along the surface */
    double lat_min = lat - angle / DEG - PAD_DEG, lat_max = lat + angle / DEG + PAD_DEG;
    if (lat_min <= -90.0 || lat_max >= 90.0) {
        /* A pole lies inside: every longitude comes within reach. */
        out[0] = (struct iot_geo_box){lat_min < -90.0 ? -90.0 : lat_min,
                                      lat_max > 90.0 ? 90.0 : lat_max, -180.0, 180.0};
        return 1;
    }
    /* The widest longitude the circle reaches (at the tangent points,
     * nearer the pole than `lat`): asin(sin(angle) / cos(lat)). */
    double s = sin(angle) / cos(lat * DEG);
    double dlon = s >= 1.0 ? 180.0 : asin(s) / DEG + PAD_DEG;
    if (dlon >= 180.0) {
        out[0] = (struct iot_geo_box){lat_min, lat_max, -180.0, 180.0};
        return 1;
    }
    double lon_min = lon - dlon, lon_max = lon + dlon;
    if (lon_min < -180.0)
        return iot_geo_region_boxes(lat_min, lon_min + 360.0, lat_max, lon_max, out);
    if (lon_max > 180.0)
        return iot_geo_region_boxes(lat_min, lon_min, lat_max, lon_max - 360.0, out);
    return iot_geo_region_boxes(lat_min, lon_min, lat_max, lon_max, out);
}
