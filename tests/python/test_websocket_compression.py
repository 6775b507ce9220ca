"""WebSocket `compression: true` (permessage-deflate, RFC 7692), browser frame splitting and
`websocket { ping_interval }`, as nats-server 2.14 does them (`server/websocket.go`,
`client.go`): byte for byte where the bytes are fixed. Raw sockets and Python's
`zlib` (raw deflate, wbits=-15) build and read the frames. Runs against nats-server as well
(EDGEBUS_SERVER_CMD=nats-server)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import time
import zlib

from conftest import EDGEBUS_ONLY
from edgehelp import Wire, WsWire, poll_sync
from test_websocket_auth import ws_server

OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
CHROME = ("User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36\r\n")
SAFARI = ("User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Safari/605.1.15\r\n")
TAIL = b"\x00\x00\xff\xff"


def deflate(data: bytes, level: int = 1) -> bytes:
    """A message as a client compresses it: raw deflate, sync-flushed, the tail taken off."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def inflate(data: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(data + TAIL)


def frame(payload: bytes, b0: int) -> bytes:
    """A masked client frame with first byte `b0` (FIN, RSV1 and opcode as given)."""
    size = len(payload)
    if size < 126:
        head = bytes([b0, 0x80 | size])
    elif size < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", size)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", size)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Frames:
    """Reads server frames with their first byte, and NATS bytes across them."""

    def __init__(self, w: WsWire):
        self.w = w
        self.stream = b""

    def next(self, timeout: float = 5.0) -> tuple[int, bytes]:
        raw = self.w.raw
        b0, b1 = raw.exactly(2, timeout)
        size = b1 & 0x7F
        if size == 126:
            size = struct.unpack(">H", raw.exactly(2, timeout))[0]
        elif size == 127:
            size = struct.unpack(">Q", raw.exactly(8, timeout))[0]
        assert not b1 & 0x80, "server frames are not masked"
        return b0, raw.exactly(size, timeout)

    def message(self, timeout: float = 5.0) -> tuple[list[tuple[int, int]], bytes]:
        """The next data message: its frames' (first byte, size) and its NATS bytes."""
        parts, data = [], b""
        while True:
            b0, payload = self.next(timeout)
            if b0 & 0x0F == 0x8:
                raise ConnectionError(f"close frame {payload!r}")
            assert b0 & 0x0F in (0x0, 0x2), f"not a data frame: {b0:#x} {payload!r}"
            parts.append((b0, len(payload)))
            data += payload
            if b0 & 0x80:
                break
        compressed = parts[0][0] & 0x40
        return parts, inflate(data) if compressed else data

    def until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        while marker not in self.stream:
            self.stream += self.message(timeout)[1]
        end = self.stream.index(marker) + len(marker)
        head, self.stream = self.stream[:end], self.stream[end:]
        return head

    def close_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """Skips data frames up to the close frame: its status and reason."""
        while True:
            b0, payload = self.next(timeout)
            if b0 & 0x0F == 0x8:
                return struct.unpack(">H", payload[:2])[0], payload[2:]

    def ends(self, srv, status: int, reason: bytes, logged: str) -> None:
        """The connection ends for `logged` (the server's `read error: …` line). nats-server
        queues its close frame and closes without flushing it, so a client may see just the
        end; edgebus always sends the frame."""
        try:
            got = self.close_frame()
        except TimeoutError:
            got = None
            assert self.w.raw.closed
        if EDGEBUS_ONLY or got is not None:
            assert got == (status, reason)
        assert self.w.raw.wait_closed(5)
        poll_sync(lambda: f"read error: {logged}" in srv.log_text())


def server(make_server, compression: bool = True, top: str = ""):
    return ws_server(make_server, "  compression: true" if compression else "", top)


def connect(srv, headers: str = OFFER) -> tuple[WsWire, Frames, dict, str]:
    """Upgrades and reads the INFO: the client, its frame reader, the 101's headers and the
    INFO frame's first byte."""
    w = WsWire(srv.ws_port)
    status, headers = w.upgrade(headers)
    assert status.startswith("HTTP/1.1 101"), status
    f = Frames(w)
    parts, info = f.message()
    assert info.startswith(b"INFO "), info
    return w, f, headers, parts


@contextlib.contextmanager
def session(srv, headers: str = OFFER):
    """`connect`, closing the client at the end: the client and its frame reader."""
    w, f, _, _ = connect(srv, headers)
    try:
        yield w, f
    finally:
        w.close()


def hello(w: WsWire, f: Frames, compress: bool = True) -> None:
    connect_line = b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"lang":"raw","echo":true}\r\n'
    send(w, connect_line + b"PING\r\n", compress)
    assert f.until(b"\r\n") == b"PONG\r\n"
    # nats-server follows the PONG with an INFO in the same buffer
    while f.stream.startswith(b"INFO "):
        f.until(b"\r\n")


def send(w: WsWire, data: bytes, compress: bool = True) -> None:
    w.raw.send(frame(deflate(data), 0xC2) if compress else frame(data, 0x82))


def test_upgrade_answers_the_offer_as_nats_server(make_server):
    srv = server(make_server)
    w = WsWire(srv.ws_port)
    try:
        w.raw.send((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {w.key}\r\nSec-WebSocket-Version: 13\r\n"
                    f"Nats-No-Masking: true\r\n{OFFER}\r\n").encode())
        head = w.raw.until(b"\r\n\r\n").decode()
        lines = head.split("\r\n")
        assert lines[1:3] == ["Upgrade: websocket", "Connection: Upgrade"]
        assert lines[3].startswith("Sec-WebSocket-Accept: ")
        # the extension answer comes before the no-masking echo
        assert lines[4:6] == [f"Sec-WebSocket-Extensions: {ANSWER}", "Nats-No-Masking: true"], head
    finally:
        w.close()
    # not offered: not negotiated, and the INFO comes plain
    w, f, headers, parts = connect(srv, headers="")
    w.close()
    assert "sec-websocket-extensions" not in headers
    assert not parts[0][0] & 0x40


def test_offer_without_compression_configured_is_not_answered(make_server):
    srv = server(make_server, compression=False)
    w, f, headers, parts = connect(srv)
    try:
        assert "sec-websocket-extensions" not in headers
        assert parts == [(0x82, parts[0][1])]
        # RSV1 on a connection that did not negotiate it: close 1002, as before
        send(w, b"PING\r\n")
        reason = "compressed frame received without negotiated permessage-deflate"
        f.ends(srv, 1002, reason.encode(), reason)
    finally:
        w.close()


def test_info_compressed_and_small_buffers_plain(make_server):
    srv = server(make_server)
    w, f, headers, parts = connect(srv)
    try:
        assert headers.get("sec-websocket-extensions") == ANSWER
        # the INFO is longer than 64 bytes: one compressed final frame
        assert len(parts) == 1 and parts[0][0] == 0xC2
        hello(w, f)
        send(w, b"SUB a 1\r\nPUB a 5\r\nhello\r\nPING\r\n")
        # "MSG a 1 5\r\nhello\r\nPONG\r\n" may be one buffer or two, each at most 64 bytes: plain
        got, frames = b"", []
        while len(got) < len(b"MSG a 1 5\r\nhello\r\nPONG\r\n"):
            p, data = f.message()
            frames += p
            got += data
        assert got == b"MSG a 1 5\r\nhello\r\nPONG\r\n"
        assert all(b0 == 0x82 for b0, _ in frames), frames
        # a plain frame from the client is still read on a compressed connection
        send(w, b"PUB a 2\r\nhi\r\nPING\r\n", compress=False)
        assert f.until(b"PONG\r\n") == b"MSG a 1 2\r\nhi\r\nPONG\r\n"
    finally:
        w.close()


def test_ten_kilobytes_each_way(make_server):
    srv = server(make_server)
    with session(srv) as (w, f):
        hello(w, f)
        body = bytes((i * 7 + i // 100) % 251 for i in range(10_000))
        send(w, b"SUB big 1\r\nPUB big 10000\r\n" + body + b"\r\nPING\r\n")
        parts, data = f.message()
        # no User-Agent: one compressed frame for what was flushed
        assert parts[0][0] == 0xC2 and len(parts) == 1, parts
        stream = data
        while b"PONG\r\n" not in stream:
            stream += f.message()[1]
        assert stream == b"MSG big 1 10000\r\n" + body + b"\r\nPONG\r\n"


def test_a_large_write_inflates_within_a_receivers_limit(make_server):
    """A 300 KB MSG arrives whole. nats-server deflates a whole flush as one message;
    edgebus deflates at most 64 KiB per message, so no receiver refuses it for inflating
    past its max_payload (a nats-server leaf refuses past 1 MB)."""
    srv = server(make_server)
    with session(srv) as (w, f):
        hello(w, f)
        body = bytes((i * 31 + i // 7) % 256 for i in range(300_000))
        with Wire(srv.port) as publisher:
            publisher.hello()
            send(w, b"SUB big 1\r\n")
            send(w, b"PING\r\n", compress=False)
            assert f.until(b"PONG\r\n") == b"PONG\r\n"
            publisher.send(b"PUB big 300000\r\n" + body + b"\r\n")
            publisher.roundtrip()
        want = b"MSG big 1 300000\r\n" + body + b"\r\n"
        stream, sizes = b"", []
        while len(stream) < len(want):
            parts, data = f.message()
            assert parts[0][0] & 0x40, parts  # compressed
            sizes.append(len(data))
            stream += data
        assert stream == want
        if EDGEBUS_ONLY:
            assert max(sizes) <= 64 * 1024 and len(sizes) >= 5, sizes


def test_fragmented_compressed_message(make_server):
    srv = server(make_server)
    with session(srv) as (w, f):
        hello(w, f)
        z = deflate(b"SUB f 1\r\nPUB f 11\r\nfragmented!\r\nPING\r\n")
        cuts = [0, 3, 9, len(z) - 1, len(z)]
        out = b""
        for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
            b0 = (0x42 if i == 0 else 0x00) | (0x80 if b == len(z) else 0)
            out += frame(z[a:b], b0)
            if i == 1:
                out += frame(b"mid", 0x89)  # a ping between the fragments
        w.raw.send(out)
        b0, pong = f.next()
        assert (b0, pong) == (0x8A, b"mid")
        assert f.until(b"PONG\r\n") == b"MSG f 1 11\r\nfragmented!\r\nPONG\r\n"


def test_rsv1_on_a_continuation_is_a_protocol_error(make_server):
    srv = server(make_server)
    with session(srv) as (w, f):
        z = deflate(b"PING\r\n")
        w.raw.send(frame(z[:2], 0x42) + frame(z[2:], 0xC0))
        f.ends(srv, 1002, b"invalid continuation frame", "invalid continuation frame")


def test_corrupt_deflate_stream_ends_the_connection(make_server):
    srv = server(make_server)
    with session(srv) as (w, f):
        hello(w, f)
        # block type 3 is reserved: no inflater accepts it
        w.raw.send(frame(b"\xff\xff\xff\xff", 0xC2))
        # nats-server: "flate: corrupt input before offset 1" (Go's words, with the offset)
        f.ends(srv, 1001, b"Read Error", "flate: corrupt input")
    assert_serves(srv)


def assert_serves(srv) -> None:
    with session(srv) as (w, f):
        hello(w, f)


def test_deflate_bomb_is_refused_within_max_payload(make_server):
    """64 MiB of zeros compress to about 64 KiB: inflated, the message is past max_payload
    (1 MiB by default), so nats-server stops reading it and ends the connection."""
    srv = server(make_server)
    with session(srv) as (w, f):
        hello(w, f)
        bomb = deflate(b"\0" * (64 << 20), level=9)
        assert len(bomb) < 128 << 10
        w.raw.send(frame(bomb, 0xC2))
        f.ends(srv, 1001, b"Read Error", "maximum payload exceeded")
    assert_serves(srv)
    assert "panic" not in srv.log_text()


def test_inflated_messages_are_limited_by_max_payload(make_server):
    """The limit is on one message's inflated size (here 4 KiB): a PUB of 1000 bytes is
    read; many small PUBs in one message that together inflate past it are refused, after
    the ones within the limit."""
    srv = server(make_server, top="max_payload: 4096")
    with session(srv) as (w, f):
        hello(w, f)
        body = b"y" * 1000
        send(w, b"SUB m 1\r\nPUB m 1000\r\n" + body + b"\r\nPING\r\n")
        assert f.until(b"PONG\r\n") == b"MSG m 1 1000\r\n" + body + b"\r\nPONG\r\n"
        # many small PUBs that together inflate past max_payload, in one message
        with Wire(srv.port) as watcher:
            watcher.hello()
            watcher.send(b"SUB n 1\r\n")
            watcher.roundtrip()
            send(w, b"PUB n 1\r\nx\r\n" * 400)
            f.ends(srv, 1001, b"Read Error", "maximum payload exceeded")
            # what inflated within the limit was read: the 341 whole PUBs of 12 bytes in 4096
            got = watcher.roundtrip()
            assert got.count(b"MSG n 1 1\r\nx\r\n") == 4096 // 12, got[-200:]


def test_browser_user_agent_gets_frames_of_at_most_4096_bytes(make_server):
    srv = server(make_server, compression=False)
    with session(srv, headers=CHROME) as (w, f):
        hello(w, f, compress=False)
        body = bytes(i % 251 for i in range(10_000))
        send(w, b"SUB big 1\r\nPUB big 10000\r\n" + body + b"\r\nPING\r\n", compress=False)
        sizes, stream = [], b""
        while b"PONG\r\n" not in stream:
            parts, data = f.message()
            # each frame is a whole message (FIN), never a continuation
            assert len(parts) == 1 and parts[0][0] == 0x82, parts
            sizes.append(parts[0][1])
            stream += data
        assert stream == b"MSG big 1 10000\r\n" + body + b"\r\nPONG\r\n"
        assert max(sizes) == 4096 and len(sizes) >= 3, sizes


def test_browser_compressed_message_is_split_into_continuations(make_server):
    srv = server(make_server)
    with session(srv, headers=OFFER + CHROME) as (w, f):
        hello(w, f)
        body = os.urandom(10_000)  # does not compress: more than 4096 bytes deflated
        send(w, b"SUB big 1\r\nPUB big 10000\r\n" + body + b"\r\n")
        parts, data = f.message()
        assert data == b"MSG big 1 10000\r\n" + body + b"\r\n"
        assert parts[0] == (0x42, 4096), parts
        assert all(b0 == 0x00 and size == 4096 for b0, size in parts[1:-1]), parts
        assert parts[-1][0] == 0x80 and 0 < parts[-1][1] <= 4096, parts


def test_safari_compressed_message_is_one_frame(make_server):
    srv = server(make_server)
    with session(srv, headers=OFFER + SAFARI) as (w, f):
        hello(w, f)
        body = os.urandom(10_000)
        send(w, b"SUB big 1\r\nPUB big 10000\r\n" + body + b"\r\n")
        parts, data = f.message()
        assert data == b"MSG big 1 10000\r\n" + body + b"\r\n"
        assert len(parts) == 1 and parts[0][0] == 0xC2 and parts[0][1] > 10_000, parts


# ----------------------------------------------------- websocket { ping_interval } ---

def test_websocket_ping_interval_replaces_the_top_level_one(make_server):
    """nats-server pings WebSocket clients every `websocket { ping_interval }` (its first
    ping too) instead of the top-level interval: with 100ms there and an hour at the top, a
    client that never answers is stale after ping_max + 1 pings, well within the wait here
    (with the top-level hour it would be pinged once, at 2 s, and then not for an hour)."""
    srv = ws_server(make_server, '  ping_interval: "100ms"', top='ping_interval: "1h"\nping_max: 1')
    with session(srv, headers="") as (w, f):
        w.raw.send(frame(b'CONNECT {"verbose":false,"protocol":1,"lang":"raw"}\r\n', 0x82))
        lines = []
        while b"Stale Connection" not in b"".join(lines):
            lines.append(f.until(b"\r\n", timeout=10))
        pings = [line for line in lines if line == b"PING\r\n"]
        assert len(pings) == 1 and lines[-1] == b"-ERR 'Stale Connection'\r\n", lines
