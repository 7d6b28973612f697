"""A minimal MQTT client on a bare socket, for what a real client library
hides or refuses to do: stay silent after CONNECT (keep-alive), send a
password without a user name, ask for a persistent session with an empty
client id, read the exact bytes of a 3.1.1 CONNACK return code or of a v5
DISCONNECT reason code (paho 2.1 reports a DISCONNECT that carries only its
reason code as a normal one), and send a packet above the server's maximum.

Only the few packets those tests need are encoded; everything received is
split into (type, flags, body) and decoded just as far as the tests look."""
import socket
import struct
import time

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14


def varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    data = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(data)) + data


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect_packet(version, *, client_id="", password=None, username=None, keepalive=60,
                   clean=True, will=None):
    """CONNECT for protocol level 4 (3.1.1) or 5 (or any other level, to
    be refused), without v5 properties; `will` = (topic, payload), QoS 1."""
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) \
        | (0x40 if password is not None else 0) | (0x04 | 0x08 if will else 0)
    body = utf8("MQTT") + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        body += varint(0)
    body += utf8(client_id)
    if will:
        body += (varint(0) if version == 5 else b"") + utf8(will[0]) + utf8(will[1])
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += utf8(password)
    return packet(CONNECT, 0, body)


def publish_packet(version, topic, payload, *, qos=1, mid=1):
    body = utf8(topic) + (struct.pack("!H", mid) if qos else b"")
    if version == 5:
        body += varint(0)
    return packet(PUBLISH, qos << 1, body + payload)


def subscribe_packet(version, topic_filter, *, qos=1, mid=1):
    body = struct.pack("!H", mid) + (varint(0) if version == 5 else b"")
    return packet(SUBSCRIBE, 2, body + utf8(topic_filter) + bytes([qos]))


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class RawClient:
    """One TCP connection; every read has a deadline."""

    def __init__(self, port, version, timeout=10.0):
        self.version = version
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet before the deadline") from None
        except ConnectionResetError:
            raise Closed("connection reset") from None
        if not chunk:
            raise Closed("connection closed")
        self.buf += chunk

    def read(self, timeout=10.0):
        """The next packet as (type, flags, body); Closed at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = self._split()
            if parsed:
                return parsed
            self._fill(deadline)

    def _split(self):
        if len(self.buf) < 2:
            return None
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf):
                return None
            byte = self.buf[i]
            length += (byte & 0x7F) * mult
            mult *= 128
            i += 1
            if not byte & 0x80:
                break
        if len(self.buf) < i + length:
            return None
        first, body = self.buf[0], self.buf[i:i + length]
        self.buf = self.buf[i + length:]
        return first >> 4, first & 0x0F, body

    def connect(self, timeout=10.0, **kw):
        """Sends CONNECT, returns (session_present, return/reason code)."""
        self.send(connect_packet(self.version, **kw))
        ptype, _, body = self.read(timeout)
        assert ptype == CONNACK, f"expected CONNACK, got packet type {ptype} body {body!r}"
        return bool(body[0] & 1), body[1]

    def until_closed(self, timeout):
        """Reads until the server closes; returns (seconds waited, the v5
        DISCONNECT reason code or None when none came first). Fails on a
        timeout."""
        start = time.monotonic()
        deadline = start + timeout
        reason = None
        while True:
            try:
                ptype, _, body = self.read(max(deadline - time.monotonic(), 0.001))
            except Closed:
                return time.monotonic() - start, reason
            except TimeoutError:
                raise AssertionError(f"connection still open after {timeout} s") from None
            if ptype == DISCONNECT:
                reason = body[0] if body else 0
