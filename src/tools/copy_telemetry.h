/* copy_telemetry.h — `iotflowd copy-telemetry`: copies every message of one
 * telemetry store into another (the move from the embedded SQLite store to
 * Cassandra), resumable and idempotent.
 *
 * The source is read with export_scan in (device_id, ts, seq) order; each
 * message is written again with iot_tm_write_batch under the same identity
 * (device, ts, seq), owner, data and metadata text, byte for byte, its
 * typed points rebuilt from the data by the submission rules, so the
 * destination derives latest values, rollups and catalog itself. After
 * every batch the cursor goes to a state file (tools/copy_state.h): an
 * interrupted copy resumes there, and writing a message twice stores it
 * once. Runs on the calling thread; stores may start threads of their own. */
#ifndef IOT_TOOLS_COPY_TELEMETRY_H
#define IOT_TOOLS_COPY_TELEMETRY_H

/* argv[0] is "copy-telemetry", then its options (see --help). Blocks
 * SIGINT and SIGTERM in the calling thread (and so in the threads the
 * stores start): they end the copy between two batches, state saved.
 * Returns the process exit status: 0 copied, 1 failed (the state kept
 * for a rerun), 2 bad usage, 3 stopped by --max-batches (a test hook),
 * 128 + the signal when interrupted. Messages go to stderr; no URL is ever
 * printed with its password. */
int iot_copy_telemetry_main(int argc, char **argv);

#endif
