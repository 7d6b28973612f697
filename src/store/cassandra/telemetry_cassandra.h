/* telemetry_cassandra.h — the telemetry store on Apache Cassandra, selected
 * by a cassandra:// URL (see tmcass_url.c for its form). Every instance of
 * iotflowd pointed at the same keyspace shares the data; writes and reads
 * run at the URL's consistency. Design: tmcass_schema.c, tmcass_agg.c and
 * docs/ARCHITECTURE.md "Telemetry on Cassandra". */
#ifndef IOT_STORE_CASSANDRA_TELEMETRY_CASSANDRA_H
#define IOT_STORE_CASSANDRA_TELEMETRY_CASSANDRA_H

#include "store/telemetry.h"

extern const struct iot_telemetry_ops iot_telemetry_cassandra;

#endif
