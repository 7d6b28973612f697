/* mqtt_codec.h — the MQTT 3.1.1 (protocol level 4) and 5.0 (level 5) packet
 * codec of the coming MQTT listener: framing of a received byte stream
 * (Remaining Length), decoding of every control packet into plain structs
 * with the checks the specifications require of a receiver, encoding from
 * the same structs, and topic name/filter rules and matching. No I/O, no
 * threads, no allocation: like src/cql, the codec is pure so that it can be
 * unit-tested byte for byte and fuzzed (tests/fuzz/mqtt_packet_fuzz.c).
 *
 * Errors: its own small enum (mqtt_err), not util/err.h, because what a
 * listener must do with a decoding error is protocol-specific — close the
 * connection, or first send a CONNACK/DISCONNECT carrying the v5 reason
 * code that mqtt_err_reason() gives — and IOT_EINVAL cannot tell malformed
 * from protocol error from too large. The only iotflow include is
 * util/utf8.h, the project's one UTF-8 decoder (it already refuses overlong
 * forms, surrogates and code points above U+10FFFF, as MQTT demands).
 *
 * Ownership: decoded strings, binary data, payloads and lists point INTO the
 * caller's buffer (never NUL-terminated); keep the buffer while the struct
 * is used. Threading: no global state, any thread. */
#ifndef IOT_MQTT_CODEC_H
#define IOT_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mqtt_err {
    MQTT_OK = 0,
    MQTT_E_AGAIN = -1,       /* incomplete: more bytes needed */
    MQTT_E_MALFORMED = -2,   /* not parseable as the spec says (v5 0x81) */
    MQTT_E_PROTOCOL = -3,    /* parseable but breaks a rule (v5 0x82) */
    MQTT_E_TOO_LARGE = -4,   /* above the caller's maximum (v5 0x95) */
    MQTT_E_UNSUPPORTED = -5, /* protocol level other than 4 or 5 */
    MQTT_E_BUFFER = -6,      /* encode: output buffer too small */
    MQTT_E_INVALID = -7,     /* encode: the struct breaks a rule */
};

const char *mqtt_strerror(int err);

enum mqtt_version {
    MQTT_V311 = 4,
    MQTT_V5 = 5,
};

enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15,
};

/* "PUBLISH", …; "UNKNOWN" otherwise. */
const char *mqtt_type_name(uint8_t type);

/* MQTT 5.0 reason codes (§2.4). 3.1.1 CONNACK return codes are 0..5 and its
 * SUBACK failure is 0x80; they share the fields below. */
enum mqtt_reason {
    MQTT_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
    MQTT_RC_GRANTED_QOS_1 = 0x01,
    MQTT_RC_GRANTED_QOS_2 = 0x02,
    MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
    MQTT_RC_REAUTHENTICATE = 0x19,
    MQTT_RC_UNSPECIFIED_ERROR = 0x80,
    MQTT_RC_MALFORMED_PACKET = 0x81,
    MQTT_RC_PROTOCOL_ERROR = 0x82,
    MQTT_RC_IMPLEMENTATION_SPECIFIC = 0x83,
    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
    MQTT_RC_CLIENT_ID_NOT_VALID = 0x85,
    MQTT_RC_BAD_USERNAME_OR_PASSWORD = 0x86,
    MQTT_RC_NOT_AUTHORIZED = 0x87,
    MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    MQTT_RC_SERVER_BUSY = 0x89,
    MQTT_RC_BANNED = 0x8A,
    MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
    MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    MQTT_RC_PACKET_ID_IN_USE = 0x91,
    MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
    MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
    MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    MQTT_RC_PACKET_TOO_LARGE = 0x95,
    MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    MQTT_RC_QUOTA_EXCEEDED = 0x97,
    MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
    MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    MQTT_RC_SERVER_MOVED = 0x9D,
    MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
    MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
    MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
    MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* The v5 reason code a listener sends (in CONNACK before a session exists,
 * in DISCONNECT after) for a decode error: MALFORMED → 0x81, PROTOCOL →
 * 0x82, TOO_LARGE → 0x95, UNSUPPORTED → 0x84, anything else 0x80. */
uint8_t mqtt_err_reason(int err);

/* v5 property identifiers (§2.2.2.2). */
enum mqtt_prop_id {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,
    MQTT_PROP_CONTENT_TYPE = 0x03,
    MQTT_PROP_RESPONSE_TOPIC = 0x08,
    MQTT_PROP_CORRELATION_DATA = 0x09,
    MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
    MQTT_PROP_SESSION_EXPIRY = 0x11,
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    MQTT_PROP_AUTH_METHOD = 0x15,
    MQTT_PROP_AUTH_DATA = 0x16,
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
    MQTT_PROP_WILL_DELAY = 0x18,
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
    MQTT_PROP_RESPONSE_INFO = 0x1A,
    MQTT_PROP_SERVER_REFERENCE = 0x1C,
    MQTT_PROP_REASON_STRING = 0x1F,
    MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
    MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
    MQTT_PROP_TOPIC_ALIAS = 0x23,
    MQTT_PROP_MAXIMUM_QOS = 0x24,
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    MQTT_PROP_USER = 0x26,
    MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};
#define MQTT_PROP_ID_MAX 0x2A

/* UTF-8 string or binary data, borrowed, not NUL-terminated. */
struct mqtt_str {
    const char *ptr;
    size_t len;
};
struct mqtt_bytes {
    const uint8_t *ptr;
    size_t len;
};

struct mqtt_user_prop {
    struct mqtt_str name, value;
};

/* A v5 property block. `present` has bit (1 << id) for every property
 * given; the value of a numeric property (byte, two/four-byte integer,
 * variable byte integer) is in num[id], of a string or binary one in
 * data[id] (a string's bytes as binary). User properties and PUBLISH's
 * subscription identifiers may repeat: to encode, point `user`/`sub_ids` at
 * arrays; a decoded block leaves them NULL, counts them in n_user/n_sub_ids
 * and keeps the encoded block in `raw` — read them with the iterators
 * below, which serve both cases. A subscription identifier given once is
 * also in num[MQTT_PROP_SUBSCRIPTION_ID]. */
struct mqtt_props {
    uint64_t present;
    uint32_t num[MQTT_PROP_ID_MAX + 1];
    struct mqtt_bytes data[MQTT_PROP_ID_MAX + 1];
    const struct mqtt_user_prop *user;
    size_t n_user;
    const uint32_t *sub_ids;
    size_t n_sub_ids;
    struct mqtt_bytes raw;
};

static inline bool mqtt_props_has(const struct mqtt_props *p, uint8_t id)
{
    return id <= MQTT_PROP_ID_MAX && (p->present >> id) & 1;
}
/* Sets a numeric or string/binary property (id must take that kind). */
void mqtt_props_set_num(struct mqtt_props *p, uint8_t id, uint32_t value);
void mqtt_props_set_data(struct mqtt_props *p, uint8_t id, const void *ptr, size_t len);

/* Iteration: start *pos at 0; false after the last one. */
bool mqtt_props_user_next(const struct mqtt_props *p, size_t *pos, struct mqtt_user_prop *out);
bool mqtt_props_sub_id_next(const struct mqtt_props *p, size_t *pos, uint32_t *out);

/* Subscription options byte (3.1.1 §3.8.3.1: QoS only; 5.0 §3.8.3.1). */
#define MQTT_SUB_QOS_MASK 0x03
#define MQTT_SUB_NO_LOCAL 0x04
#define MQTT_SUB_RETAIN_AS_PUBLISHED 0x08
#define MQTT_SUB_RETAIN_HANDLING_SHIFT 4

struct mqtt_subscription {
    struct mqtt_str filter;
    uint8_t options;
};

struct mqtt_will {
    uint8_t qos;
    bool retain;
    struct mqtt_props props; /* v5 only */
    struct mqtt_str topic;
    struct mqtt_bytes payload;
};

struct mqtt_connect {
    uint8_t version;  /* MQTT_V311 or MQTT_V5: the packet's own level */
    bool clean_start; /* 3.1.1 "Clean Session" */
    bool will_flag;
    bool has_username, has_password;
    uint16_t keep_alive;
    struct mqtt_props props; /* v5 only */
    struct mqtt_str client_id;
    struct mqtt_will will; /* if will_flag */
    struct mqtt_str username;
    struct mqtt_bytes password;
};

struct mqtt_connack {
    bool session_present;
    uint8_t reason; /* 3.1.1: return code 0..5 */
    struct mqtt_props props;
};

struct mqtt_publish {
    uint8_t qos;
    bool dup, retain;
    struct mqtt_str topic;
    uint16_t packet_id; /* QoS 1 and 2 only */
    struct mqtt_props props;
    struct mqtt_bytes payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct mqtt_ack {
    uint16_t packet_id;
    uint8_t reason; /* v5 */
    struct mqtt_props props;
};

/* SUBSCRIBE: to encode, point `subs` at n_subs entries; decoded, subs is
 * NULL and `raw` holds the payload: read with mqtt_subscribe_next. */
struct mqtt_subscribe {
    uint16_t packet_id;
    struct mqtt_props props;
    const struct mqtt_subscription *subs;
    size_t n_subs;
    struct mqtt_bytes raw;
};

/* UNSUBSCRIBE: the same scheme with bare filters. */
struct mqtt_unsubscribe {
    uint16_t packet_id;
    struct mqtt_props props;
    const struct mqtt_str *filters;
    size_t n_filters;
    struct mqtt_bytes raw;
};

/* SUBACK and UNSUBACK: one reason code per filter (3.1.1 UNSUBACK has
 * none). */
struct mqtt_suback {
    uint16_t packet_id;
    struct mqtt_props props;
    struct mqtt_bytes reasons;
};

/* DISCONNECT and AUTH (v5; a 3.1.1 DISCONNECT is empty). */
struct mqtt_disconnect {
    uint8_t reason;
    struct mqtt_props props;
};

struct mqtt_packet {
    uint8_t type; /* enum mqtt_type */
    union {
        struct mqtt_connect connect;
        struct mqtt_connack connack;
        struct mqtt_publish publish;
        struct mqtt_ack ack;
        struct mqtt_subscribe subscribe;
        struct mqtt_unsubscribe unsubscribe;
        struct mqtt_suback suback;
        struct mqtt_disconnect disconnect;
    } u;
};

/* Largest packet the fixed header can describe: 1 + 4 + 268435455. */
#define MQTT_MAX_REMAINING_LENGTH 268435455u

/* Incremental framing of a receive buffer holding part of a packet, one, or
 * several (only the first is looked at):
 *   MQTT_OK          a whole packet of *packet_len bytes starts at data;
 *   MQTT_E_AGAIN     incomplete; *packet_len is the total size once the
 *                    Remaining Length is known, else 0;
 *   MQTT_E_MALFORMED the Remaining Length has a fifth byte or is not in its
 *                    minimal form (5.0 §1.5.5; 3.1.1 §2.2.3's algorithm
 *                    only produces minimal forms);
 *   MQTT_E_TOO_LARGE the packet would exceed max_packet bytes (told as soon
 *                    as the header is in: the body need not be read).
 * Consumes nothing. */
int mqtt_frame(const uint8_t *data, size_t len, size_t max_packet, size_t *packet_len);

/* Decodes one whole packet (as framed by mqtt_frame) received by a server
 * or a client of protocol `version`: MQTT_E_AGAIN for a prefix, and
 * MQTT_E_MALFORMED if bytes follow the packet (len must be exactly it). A CONNECT is decoded by its own level
 * (MQTT_E_UNSUPPORTED for other than 4 or 5); everything else by `version`.
 * Decoding both directions lets the unit tests and the fuzzer round-trip
 * every packet; rules that depend on the direction are the listener's: it
 * refuses by type what a client may not send (CONNACK, SUBACK, …), a second
 * CONNECT (§3.1), a client's PUBLISH carrying a Subscription Identifier
 * (§3.3.4), an empty client id with a 3.1.1 persistent session (3.1.1
 * §3.1.3.1), and checks a payload marked UTF-8 (Payload Format Indicator 1,
 * reason 0x99) with mqtt_utf8_valid if it wants to. */
int mqtt_decode(const uint8_t *data, size_t len, uint8_t version, struct mqtt_packet *out);

/* Encodes p for `version` (a CONNECT: p->u.connect.version) into out.
 * Returns the packet's length (>0), MQTT_E_BUFFER if cap is too small
 * (out may be NULL with cap 0 to ask the size), or MQTT_E_INVALID if the
 * struct breaks a rule the decoder checks (so what we send decodes). */
int mqtt_encode(const struct mqtt_packet *p, uint8_t version, uint8_t *out, size_t cap);

/* SUBSCRIBE/UNSUBSCRIBE lists, decoded or built: *pos starts at 0. */
bool mqtt_subscribe_next(const struct mqtt_subscribe *s, size_t *pos,
                         struct mqtt_subscription *out);
bool mqtt_unsubscribe_next(const struct mqtt_unsubscribe *u, size_t *pos, struct mqtt_str *out);

/* An MQTT UTF-8 string (§1.5.3 / 3.1.1 §1.5.3): well-formed, no surrogates,
 * no U+0000. (Other controls and non-characters are only "SHOULD NOT".) */
bool mqtt_utf8_valid(const char *s, size_t len);
/* A topic name (PUBLISH): at least one byte, no '+' or '#' (§4.7). */
bool mqtt_topic_name_valid(const char *s, size_t len);
/* A topic filter: '+' fills a whole level, '#' only as the last level
 * (§4.7.1). */
bool mqtt_topic_filter_valid(const char *s, size_t len);
/* Whether the (valid) filter matches the (valid) topic name, with §4.7.2's
 * rule that a leading wildcard does not match a topic starting with '$'. */
bool mqtt_topic_matches(const char *filter, size_t filter_len, const char *topic,
                        size_t topic_len);

#endif
