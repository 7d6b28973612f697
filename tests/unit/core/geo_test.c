/* Unit tests of core/geo: haversine distances against known values, and
 * the boxes covering a circle — ordinary, across the antimeridian, over a
 * pole, the whole sphere — checked by sampling the circle's edge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_asserts.h"

#include "core/geo.h"

#define DEG (M_PI / 180.0)

static void test_distances(void **state)
{
    (void)state;
    assert_f64(iot_geo_distance_m(0, 0, 0, 0), 0);
    assert_f64(iot_geo_distance_m(0, 0, 1, 0), IOT_GEO_EARTH_RADIUS_M * DEG);
    assert_f64(iot_geo_distance_m(0, 179.5, 0, -179.5), IOT_GEO_EARTH_RADIUS_M * DEG);
    assert_f64(iot_geo_distance_m(90, 0, -90, 0), IOT_GEO_EARTH_RADIUS_M * M_PI);
    assert_f64(iot_geo_distance_m(0, 0, 0, 180), IOT_GEO_EARTH_RADIUS_M * M_PI);
    double paris_london = iot_geo_distance_m(48.8566, 2.3522, 51.5074, -0.1278);
    assert_true(paris_london > 343000 && paris_london < 344000);
}

static bool in_boxes(const struct iot_geo_box *b, size_t n, double lat, double lon)
{
    for (size_t i = 0; i < n; i++)
        if (lat >= b[i].lat_min && lat <= b[i].lat_max && lon >= b[i].lon_min &&
            lon <= b[i].lon_max)
            return true;
    return false;
}

/* The point at `dist` metres from (lat, lon) in direction `bearing`. */
static void destination(double lat, double lon, double bearing, double dist, double *olat,
                        double *olon)
{
    double a = dist / IOT_GEO_EARTH_RADIUS_M, p1 = lat * DEG, t = bearing * DEG;
    double p2 = asin(sin(p1) * cos(a) + cos(p1) * sin(a) * cos(t));
    double l2 = lon * DEG + atan2(sin(t) * sin(a) * cos(p1), cos(a) - sin(p1) * sin(p2));
    *olat = p2 / DEG;
    *olon = remainder(l2 / DEG, 360.0);
}

/* Every point on (just inside) the circle's edge lies in one of the boxes. */
static void assert_covers(double lat, double lon, double radius)
{
    struct iot_geo_box b[2];
    size_t n = iot_geo_circle_boxes(lat, lon, radius, b);
    assert_true(n == 1 || n == 2);
    for (size_t i = 0; i < n; i++) {
        assert_true(iot_geo_lat_valid(b[i].lat_min) && iot_geo_lat_valid(b[i].lat_max));
        assert_true(iot_geo_lon_valid(b[i].lon_min) && iot_geo_lon_valid(b[i].lon_max));
        assert_true(b[i].lat_min <= b[i].lat_max && b[i].lon_min <= b[i].lon_max);
    }
    for (int k = 0; k < 3600; k++) {
        double plat, plon;
        destination(lat, lon, k / 10.0, radius * (1 - 1e-9), &plat, &plon);
        if (!in_boxes(b, n, plat, plon))
            fail_msg("(%g, %g) r=%g: edge point (%.9f, %.9f) outside the boxes", lat, lon, radius,
                     plat, plon);
    }
}

static void test_boxes_cover_circles(void **state)
{
    (void)state;
    static const double centres[][2] = {{0, 0},      {48.85, 2.35}, {0, 179.9}, {0, -179.9},
                                        {-33.9, 151}, {60, -170},    {89.9, 0},  {-89.99, 45},
                                        {70, 179},    {-70, -179.5}};
    static const double radii[] = {10, 1000, 50000, 500000, 3000000};
    for (size_t c = 0; c < sizeof centres / sizeof *centres; c++)
        for (size_t r = 0; r < sizeof radii / sizeof *radii; r++)
            assert_covers(centres[c][0], centres[c][1], radii[r]);
}

static void test_box_shapes(void **state)
{
    (void)state;
    struct iot_geo_box b[2];
    assert_i64(iot_geo_circle_boxes(0, 0, 1000, b), 1);
    assert_true(b[0].lon_min > -1 && b[0].lon_max < 1);
    assert_i64(iot_geo_circle_boxes(0, 179.99, 5000, b), 2); /* across the line */
    assert_f64(b[0].lon_max, 180);
    assert_f64(b[1].lon_min, -180);
    assert_i64(iot_geo_circle_boxes(89.9, 0, 50000, b), 1); /* over the pole */
    assert_f64(b[0].lat_max, 90);
    assert_f64(b[0].lon_min, -180);
    assert_f64(b[0].lon_max, 180);
    assert_i64(iot_geo_circle_boxes(0, 0, IOT_GEO_RADIUS_MAX_M, b), 1); /* everything */
    assert_f64(b[0].lat_min, -90);
    assert_f64(b[0].lat_max, 90);
    assert_i64(iot_geo_region_boxes(-5, 175, 5, -175, b), 2);
    assert_f64(b[0].lon_min, 175);
    assert_f64(b[1].lon_max, -175);
    assert_i64(iot_geo_region_boxes(-5, -10, 5, 10, b), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distances),
        cmocka_unit_test(test_boxes_cover_circles),
        cmocka_unit_test(test_box_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
