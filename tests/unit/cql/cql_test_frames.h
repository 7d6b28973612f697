/* cql_test_frames.h — response frames written by hand from
 * native_protocol_v4.spec, one or more of every kind, shared by the codec's
 * unit tests (cql_response_test.c, cql_frame_test.c) and the generator of the
 * fuzz seeds. Each literal is annotated with the fields it holds and the
 * running byte count of its body; the header's length was counted the same
 * way. Hex escapes always end their literal, so "\x05" "abc" cannot fuse. */
#ifndef CQL_TEST_FRAMES_H
#define CQL_TEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>

struct test_frame {
    const char *name;
    const uint8_t *data;
    size_t len;
};

/* Wire bytes below are grouped one protocol field per literal by hand;
 * clang-format would put every literal on a line of its own. */
/* clang-format off */
#define TF(name, lit) {name, (const uint8_t *)(lit), sizeof(lit) - 1}

/* Response header: 0x84, flags, stream (2), opcode, body length (4). */
#define RSP(flags, stream_hi, stream_lo, op, len) \
    "\x84" flags stream_hi stream_lo op "\x00\x00\x00" len

static const struct test_frame response_frames[] = {
    TF("ready", RSP("\x00", "\x00", "\x01", "\x02", "\x00")),
    TF("authenticate", RSP("\x00", "\x00", "\x01", "\x03", "\x31")
       "\x00\x2f" "org.apache.cassandra.auth.PasswordAuthenticator"), /* 2+47 = 49 */
    TF("auth_challenge", RSP("\x00", "\x00", "\x02", "\x0e", "\x06")
       "\x00\x00\x00\x02\x01\x02"),
    TF("auth_success_null", RSP("\x00", "\x00", "\x02", "\x10", "\x04") "\xff\xff\xff\xff"),
    TF("supported", RSP("\x00", "\x00", "\x00", "\x06", "\x34")
       "\x00\x02"                                  /* 2 entries: 2 */
       "\x00\x0b" "CQL_VERSION" "\x00\x01"         /* 17 */
       "\x00\x05" "3.4.7"                          /* 24 */
       "\x00\x0b" "COMPRESSION" "\x00\x02"         /* 41 */
       "\x00\x06" "snappy" "\x00\x03" "lz4"),      /* 46, 52 */

    /* ERROR: <code><message> then the code's own fields (spec 9). */
    TF("error_server", RSP("\x00", "\x00", "\x03", "\x00", "\x0a")
       "\x00\x00\x00\x00" "\x00\x04" "boom"),
    TF("error_protocol", RSP("\x00", "\x00", "\x03", "\x00", "\x09")
       "\x00\x00\x00\x0a" "\x00\x03" "bad"),
    TF("error_auth", RSP("\x00", "\x00", "\x03", "\x00", "\x0f")
       "\x00\x00\x01\x00" "\x00\x09" "Bad creds"),
    TF("error_unavailable", RSP("\x00", "\x00", "\x03", "\x00", "\x12")
       "\x00\x00\x10\x00" "\x00\x02" "no"           /* 8 */
       "\x00\x04"                                   /* cl QUORUM: 10 */
       "\x00\x00\x00\x03" "\x00\x00\x00\x01"),      /* required 3, alive 1: 18 */
    TF("error_overloaded", RSP("\x00", "\x00", "\x03", "\x00", "\x08")
       "\x00\x00\x10\x01" "\x00\x02" "ov"),
    TF("error_bootstrapping", RSP("\x00", "\x00", "\x03", "\x00", "\x08")
       "\x00\x00\x10\x02" "\x00\x02" "bs"),
    TF("error_truncate", RSP("\x00", "\x00", "\x03", "\x00", "\x08")
       "\x00\x00\x10\x03" "\x00\x02" "tr"),
    TF("error_write_timeout", RSP("\x00", "\x00", "\x03", "\x00", "\x1a")
       "\x00\x00\x11\x00" "\x00\x02" "wt"           /* 8 */
       "\x00\x01"                                   /* cl ONE: 10 */
       "\x00\x00\x00\x00" "\x00\x00\x00\x01"        /* received 0, blockfor 1: 18 */
       "\x00\x06" "SIMPLE"),                        /* 26 */
    TF("error_read_timeout", RSP("\x00", "\x00", "\x03", "\x00", "\x13")
       "\x00\x00\x12\x00" "\x00\x02" "rt"           /* 8 */
       "\x00\x06"                                   /* LOCAL_QUORUM: 10 */
       "\x00\x00\x00\x01" "\x00\x00\x00\x02"        /* received 1, blockfor 2: 18 */
       "\x01"),                                     /* data_present: 19 */
    TF("error_read_failure", RSP("\x00", "\x00", "\x03", "\x00", "\x17")
       "\x00\x00\x13\x00" "\x00\x02" "rf"           /* 8 */
       "\x00\x04"                                   /* 10 */
       "\x00\x00\x00\x01" "\x00\x00\x00\x02"        /* 18 */
       "\x00\x00\x00\x01"                           /* numfailures 1: 22 */
       "\x00"),                                     /* data absent: 23 */
    TF("error_function_failure", RSP("\x00", "\x00", "\x03", "\x00", "\x1c")
       "\x00\x00\x14\x00" "\x00\x02" "ff"           /* 8 */
       "\x00\x02" "ks" "\x00\x01" "f"               /* 15 */
       "\x00\x02" "\x00\x03" "int" "\x00\x04" "text"), /* 28 */
    TF("error_write_failure", RSP("\x00", "\x00", "\x03", "\x00", "\x21")
       "\x00\x00\x15\x00" "\x00\x02" "wf"           /* 8 */
       "\x00\x05"                                   /* ALL: 10 */
       "\x00\x00\x00\x02" "\x00\x00\x00\x03"        /* 18 */
       "\x00\x00\x00\x01"                           /* 22 */
       "\x00\x09" "BATCH_LOG"),                     /* 33 */
    TF("error_syntax", RSP("\x00", "\x00", "\x03", "\x00", "\x09")
       "\x00\x00\x20\x00" "\x00\x03" "syn"),
    TF("error_unauthorized", RSP("\x00", "\x00", "\x03", "\x00", "\x08")
       "\x00\x00\x21\x00" "\x00\x02" "no"),
    TF("error_invalid", RSP("\x00", "\x00", "\x03", "\x00", "\x09")
       "\x00\x00\x22\x00" "\x00\x03" "inv"),
    TF("error_config", RSP("\x00", "\x00", "\x03", "\x00", "\x09")
       "\x00\x00\x23\x00" "\x00\x03" "cfg"),
    TF("error_already_exists", RSP("\x00", "\x00", "\x03", "\x00", "\x0f")
       "\x00\x00\x24\x00" "\x00\x02" "ae"           /* 8 */
       "\x00\x02" "ks" "\x00\x01" "t"),             /* 15 */
    TF("error_unprepared", RSP("\x00", "\x00", "\x03", "\x00", "\x0e")
       "\x00\x00\x25\x00" "\x00\x02" "up"           /* 8 */
       "\x00\x04\xde\xad\xbe\xef"),                 /* 14 */
    TF("error_unknown_code", RSP("\x00", "\x00", "\x03", "\x00", "\x07")
       "\x00\x00\x77\x77" "\x00\x01" "?"),

    /* RESULT (spec 4.2.5). */
    TF("result_void", RSP("\x00", "\x00", "\x04", "\x08", "\x04") "\x00\x00\x00\x01"),
    TF("result_set_keyspace", RSP("\x00", "\x00", "\x04", "\x08", "\x09")
       "\x00\x00\x00\x03" "\x00\x03" "iot"),
    TF("result_schema_table", RSP("\x00", "\x00", "\x04", "\x08", "\x1b")
       "\x00\x00\x00\x05"                           /* 4 */
       "\x00\x07" "CREATED" "\x00\x05" "TABLE"      /* 20 */
       "\x00\x02" "ks" "\x00\x01" "t"),             /* 27 */
    TF("result_schema_keyspace", RSP("\x00", "\x00", "\x04", "\x08", "\x1b")
       "\x00\x00\x00\x05"                           /* 4 */
       "\x00\x07" "DROPPED" "\x00\x08" "KEYSPACE"   /* 23 */
       "\x00\x02" "ks"),                            /* 27 */
    TF("result_schema_function", RSP("\x00", "\x00", "\x04", "\x08", "\x25")
       "\x00\x00\x00\x05"                           /* 4 */
       "\x00\x07" "CREATED" "\x00\x08" "FUNCTION"   /* 23 */
       "\x00\x02" "ks" "\x00\x01" "f"               /* 30 */
       "\x00\x01" "\x00\x03" "int"),                /* 37 */
    /* Rows with a global table spec: (k int, v text) = (1, 'a'), (2, null). */
    TF("result_rows_global", RSP("\x00", "\x00", "\x05", "\x08", "\x3a")
       "\x00\x00\x00\x02"                           /* kind rows: 4 */
       "\x00\x00\x00\x01" "\x00\x00\x00\x02"        /* flags global, 2 columns: 12 */
       "\x00\x02" "ks" "\x00\x01" "t"               /* 19 */
       "\x00\x01" "k" "\x00\x09"                    /* k int: 24 */
       "\x00\x01" "v" "\x00\x0d"                    /* v varchar: 29 */
       "\x00\x00\x00\x02"                           /* 2 rows: 33 */
       "\x00\x00\x00\x04\x00\x00\x00\x01" "\x00\x00\x00\x01" "a" /* 46 */
       "\x00\x00\x00\x04\x00\x00\x00\x02" "\xff\xff\xff\xff"),   /* 58 */
    /* Rows without metadata, more pages: paging state ab cd, one row 'z'. */
    TF("result_rows_no_metadata_paged", RSP("\x00", "\x00", "\x05", "\x08", "\x1b")
       "\x00\x00\x00\x02"                           /* 4 */
       "\x00\x00\x00\x06" "\x00\x00\x00\x01"        /* has_more_pages|no_metadata, 1 col: 12 */
       "\x00\x00\x00\x02\xab\xcd"                   /* paging state: 18 */
       "\x00\x00\x00\x01"                           /* 1 row: 22 */
       "\x00\x00\x00\x01" "z"),                     /* 27 */
    /* Per-column table spec and a nested type: m map<varchar, list<int>>,
     * one row {'a': [1, 2]}. */
    TF("result_rows_nested", RSP("\x00", "\x00", "\x05", "\x08", "\x47")
       "\x00\x00\x00\x02"                           /* 4 */
       "\x00\x00\x00\x00" "\x00\x00\x00\x01"        /* no flags, 1 col: 12 */
       "\x00\x02" "ks" "\x00\x01" "t" "\x00\x01" "m" /* 22 */
       "\x00\x21\x00\x0d\x00\x20\x00\x09"           /* map<varchar, list<int>>: 30 */
       "\x00\x00\x00\x01"                           /* 1 row: 34 */
       "\x00\x00\x00\x21"                           /* cell of 33 bytes: 38 */
       "\x00\x00\x00\x01"                           /* 1 entry */
       "\x00\x00\x00\x01" "a"                       /* key 'a' */
       "\x00\x00\x00\x14" "\x00\x00\x00\x02"        /* list of 20 bytes, 2 items */
       "\x00\x00\x00\x04\x00\x00\x00\x01" "\x00\x00\x00\x04\x00\x00\x00\x02"), /* 71 */
    /* Metadata only (0 rows) with a UDT, a tuple and a custom type. */
    TF("result_rows_udt_tuple_custom", RSP("\x00", "\x00", "\x05", "\x08", "\x48")
       "\x00\x00\x00\x02"                           /* 4 */
       "\x00\x00\x00\x01" "\x00\x00\x00\x03"        /* global, 3 cols: 12 */
       "\x00\x02" "ks" "\x00\x01" "t"               /* 19 */
       "\x00\x01" "u" "\x00\x30"                    /* u udt: 24 */
       "\x00\x02" "ks" "\x00\x02" "pt" "\x00\x02"   /* ks.pt, 2 fields: 34 */
       "\x00\x01" "x" "\x00\x09" "\x00\x01" "y" "\x00\x07" /* x int, y double: 44 */
       "\x00\x02" "tu" "\x00\x31\x00\x02\x00\x09\x00\x0d"  /* tuple<int, varchar>: 56 */
       "\x00\x01" "c" "\x00\x00" "\x00\x05" "org.X" /* custom: 68 */
       "\x00\x00\x00\x00"),                         /* 0 rows: 72 */
    /* Prepared: id deadbeef; bind markers k int (partition key), v varchar;
     * no result metadata. */
    TF("result_prepared", RSP("\x00", "\x00", "\x06", "\x08", "\x31")
       "\x00\x00\x00\x04"                           /* 4 */
       "\x00\x04\xde\xad\xbe\xef"                   /* id: 10 */
       "\x00\x00\x00\x01" "\x00\x00\x00\x02"        /* global, 2 markers: 18 */
       "\x00\x00\x00\x01" "\x00\x00"                /* pk_count 1, index 0: 24 */
       "\x00\x02" "ks" "\x00\x01" "t"               /* 31 */
       "\x00\x01" "k" "\x00\x09" "\x00\x01" "v" "\x00\x0d" /* 41 */
       "\x00\x00\x00\x04" "\x00\x00\x00\x00"),      /* result: no_metadata, 0: 49 */
    /* Prepared SELECT: same bind markers, result metadata v varchar. */
    TF("result_prepared_select", RSP("\x00", "\x00", "\x06", "\x08", "\x3d")
       "\x00\x00\x00\x04"                           /* 4 */
       "\x00\x04\xde\xad\xbe\xef"                   /* 10 */
       "\x00\x00\x00\x01" "\x00\x00\x00\x02"        /* 18 */
       "\x00\x00\x00\x01" "\x00\x00"                /* 24 */
       "\x00\x02" "ks" "\x00\x01" "t"               /* 31 */
       "\x00\x01" "k" "\x00\x09" "\x00\x01" "v" "\x00\x0d" /* 41 */
       "\x00\x00\x00\x01" "\x00\x00\x00\x01"        /* result: global, 1 col: 49 */
       "\x00\x02" "ks" "\x00\x01" "t"               /* 56 */
       "\x00\x01" "v" "\x00\x0d"),                  /* 61 */

    /* EVENT, stream -1 (spec 4.2.6). */
    TF("event_topology", RSP("\x00", "\xff", "\xff", "\x0c", "\x24")
       "\x00\x0f" "TOPOLOGY_CHANGE" "\x00\x08" "NEW_NODE" /* 27 */
       "\x04\x7f\x00\x00\x02" "\x00\x00\x23\x52"),  /* 127.0.0.2:9042: 36 */
    TF("event_status_v6", RSP("\x00", "\xff", "\xff", "\x0c", "\x2a")
       "\x00\x0d" "STATUS_CHANGE" "\x00\x04" "DOWN" /* 21 */
       "\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" /* ::1: 38 */
       "\x00\x00\x23\x52"),                         /* 42 */
    TF("event_schema_type", RSP("\x00", "\xff", "\xff", "\x0c", "\x26")
       "\x00\x0d" "SCHEMA_CHANGE" "\x00\x07" "UPDATED" /* 24 */
       "\x00\x04" "TYPE" "\x00\x02" "ks" "\x00\x02" "pt"), /* 38 */
    TF("event_schema_aggregate", RSP("\x00", "\xff", "\xff", "\x0c", "\x38")
       "\x00\x0d" "SCHEMA_CHANGE" "\x00\x07" "CREATED" /* 24 */
       "\x00\x09" "AGGREGATE" "\x00\x02" "ks" "\x00\x03" "agg" /* 44 */
       "\x00\x02" "\x00\x03" "int" "\x00\x03" "int"), /* 56 */

    /* Envelope flags (spec 2.2): tracing id, warnings, custom payload. */
    TF("void_tracing", RSP("\x02", "\x00", "\x07", "\x08", "\x14")
       "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10" /* 16 */
       "\x00\x00\x00\x01"),                         /* 20 */
    TF("void_warnings", RSP("\x08", "\x00", "\x07", "\x08", "\x17")
       "\x00\x01" "\x00\x0f" "Batch too large"      /* 19 */
       "\x00\x00\x00\x01"),                         /* 23 */
    TF("void_custom_payload", RSP("\x04", "\x00", "\x07", "\x08", "\x0f")
       "\x00\x01" "\x00\x01" "k" "\x00\x00\x00\x02" "v1" /* 11 */
       "\x00\x00\x00\x01"),                         /* 15 */
    TF("void_all_envelope", RSP("\x0e", "\x00", "\x07", "\x08", "\x32")
       "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff" /* 16 */
       "\x00\x01" "\x00\x0f" "Batch too large"      /* 35 */
       "\x00\x01" "\x00\x01" "k" "\x00\x00\x00\x02" "v1" /* 46 */
       "\x00\x00\x00\x01"),                         /* 50 */
    TF("rows_tracing_warnings", RSP("\x0a", "\x00", "\x07", "\x08", "\x3b")
       "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10" /* 16 */
       "\x00\x01" "\x00\x04" "slow"                 /* 24 */
       "\x00\x00\x00\x02"                           /* 28 */
       "\x00\x00\x00\x05" "\x00\x00\x00\x01"        /* no_metadata|global, 1 col: 36 */
       "\x00\x00\x00\x02"                           /* 2 rows: 40 */
       "\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x07" /* 52 */
       "\x00\x00\x00\x03" "abc"),                   /* 59 */
    /* Unused flags 0x10 and 0x40 are ignored (spec 2.2). */
    TF("ready_unknown_flags", RSP("\x50", "\x00", "\x01", "\x02", "\x00")),
};
/* clang-format on */

#define N_RESPONSE_FRAMES (sizeof response_frames / sizeof response_frames[0])

#endif
