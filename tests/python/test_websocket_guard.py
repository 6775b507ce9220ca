"""The WebSocket listener answers and guards as nats-server 2.14 does: malformed upgrades get
its HTTP answers, `allowed_origins` / `same_origin` refuse with 403, frames are streamed to the
parser (no frame or message is collected whole, text frames are not checked for UTF-8), so a
client cannot make the server buffer more than the parser's limits. Every case runs against
nats-server first (EDGEBUS_SERVER_CMD=nats-server); no case may make edgebus panic."""

from __future__ import annotations

import base64
import json
import os
import select
import struct

import pytest

from edgehelp import HOST, Wire, WsWire, poll_sync, ws_accept_for, ws_frame

GOOD_KEY = base64.b64encode(os.urandom(16)).decode()


def request(method="GET", version="HTTP/1.1", host=f"Host: {HOST}\r\n", upgrade="Upgrade: websocket\r\n",
            connection="Connection: Upgrade\r\n", key=f"Sec-WebSocket-Key: {GOOD_KEY}\r\n",
            ws_version="Sec-WebSocket-Version: 13\r\n", extra="") -> bytes:
    return f"{method} / {version}\r\n{host}{upgrade}{connection}{key}{ws_version}{extra}\r\n".encode()


def read_response(w: Wire) -> tuple[str, dict, bytes]:
    """Status line, headers (lower-case names) and body of one HTTP answer."""
    head = w.until(b"\r\n\r\n").decode("latin-1")
    lines = head.split("\r\n")
    headers = {}
    for h in lines[1:]:
        if ":" in h:
            k, v = h.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = w.exactly(int(headers["content-length"]))
    elif lines[0].startswith("HTTP/1.1 101"):
        body = b""
    else:  # Go's own refusals: body until it closes
        w.wait_closed(5)
        body, w.pending = w.pending, b""
    return lines[0], headers, body


def no_panic(srv) -> None:
    assert "panicked" not in srv.log_text(), srv.log_text()[-3000:]


def ws_server(make_server, extra_ws: str = ""):
    """A private server whose websocket block carries `extra_ws`."""
    srv = make_server(start=False)
    srv.config_path.write_text(
        f'websocket {{\n  host: "{HOST}"\n  port: {srv.ws_port}\n  no_tls: true\n{extra_ws}\n}}\n'
    )
    return srv.start()


@pytest.fixture
def wsrv(make_server):
    srv = ws_server(make_server)
    yield srv
    no_panic(srv)


# ------------------------------------------------------------------ upgrade ---

HANDLER_REFUSALS = {
    "no Upgrade header": (request(upgrade=""), "HTTP/1.1 400 Bad Request"),
    "Upgrade not websocket": (request(upgrade="Upgrade: h2c\r\n"), "HTTP/1.1 400 Bad Request"),
    "no Connection header": (request(connection=""), "HTTP/1.1 400 Bad Request"),
    "version 8": (request(ws_version="Sec-WebSocket-Version: 8\r\n"), "HTTP/1.1 400 Bad Request"),
    "no version": (request(ws_version=""), "HTTP/1.1 400 Bad Request"),
    "no key": (request(key=""), "HTTP/1.1 400 Bad Request"),
    "key not base64": (request(key="Sec-WebSocket-Key: not base64 at all!!!!!==\r\n"), "HTTP/1.1 400 Bad Request"),
    "key of 3 bytes": (request(key="Sec-WebSocket-Key: YWJj\r\n"), "HTTP/1.1 400 Bad Request"),
    "POST": (request(method="POST"), "HTTP/1.1 405 Method Not Allowed"),
    "lower-case get": (request(method="get"), "HTTP/1.1 405 Method Not Allowed"),
    "version folded into 13 x": (request(extra=" x\r\n"), "HTTP/1.1 400 Bad Request"),
}


@pytest.mark.parametrize("case", list(HANDLER_REFUSALS))
def test_refused_upgrade_gets_nats_server_answer_and_keeps_alive(wsrv, case):
    raw, status = HANDLER_REFUSALS[case]
    with Wire(wsrv.ws_port) as w:
        w.send(raw)
        line, headers, body = read_response(w)
        assert line == status
        assert headers["sec-websocket-version"] == "13"
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert headers["x-content-type-options"] == "nosniff"
        assert "date" in headers
        assert body == status.split(" ", 2)[2].encode() + b"\n"
        # HTTP/1.1 keep-alive: the same connection may try again, and succeeds
        w.send(request())
        line, headers, _ = read_response(w)
        assert line == "HTTP/1.1 101 Switching Protocols"
        assert headers["sec-websocket-accept"] == ws_accept_for(GOOD_KEY)


GO_REFUSALS = {
    "garbage request line": (b"garbage\r\n\r\n", "400 Bad Request"),
    "TLS hello on a plain port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", "400 Bad Request"),
    "header line without colon": (request(extra="NoColonHere\r\n"), "400 Bad Request"),
    "header name with a space": (request(extra="Bad Name: x\r\n"), "400 Bad Request: invalid header name"),
    "HTTP/1.1 without Host": (request(host=""), "400 Bad Request: missing required Host header"),
    "relative request URI": (b"GET foo HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request"),
    "control byte in a value": (request(extra="X-Ctl: a\x01b\r\n"), "400 Bad Request"),
    "two Host headers": (request(extra="Host: other\r\n"), "400 Bad Request"),
    "HTTP/2.0": (request(version="HTTP/2.0"), "505 HTTP Version Not Supported: unsupported protocol version"),
    "head over 1 MiB + 4 KiB": (request(extra="X-Big: " + "a" * ((1 << 20) + 8192) + "\r\n"),
                                "431 Request Header Fields Too Large"),
}


@pytest.mark.parametrize("case", list(GO_REFUSALS))
def test_malformed_request_gets_go_answer_and_close(wsrv, case):
    raw, public = GO_REFUSALS[case]
    with Wire(wsrv.ws_port) as w:
        try:
            w.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a server that answered before reading all of a huge head
        line, headers, body = read_response(w)
        assert line == "HTTP/1.1 " + public
        assert headers["connection"] == "close"
        assert body == public.encode()
        assert w.wait_closed(5)


def test_http10_without_host_is_refused_then_closed(wsrv):
    with Wire(wsrv.ws_port) as w:
        w.send(request(version="HTTP/1.0", host=""))
        line, _, body = read_response(w)
        assert (line, body) == ("HTTP/1.0 400 Bad Request", b"Bad Request\n")
        assert w.wait_closed(5)


UPGRADED = {
    "HTTP/1.0 with Host": request(version="HTTP/1.0"),
    "one header of 1 MiB": request(extra="X-Big: " + "a" * (1 << 20) + "\r\n"),
    "5000 headers": request(extra="".join(f"X-H{i}: v\r\n" for i in range(5000))),
    "token lists and odd case": request(upgrade="Upgrade: foo, WebSocket\r\n",
                                        connection="Connection: keep-alive, upgrade\r\n",
                                        ws_version="Sec-WebSocket-Version: 8, 13\r\n"),
    "bytes above 0x7f in a value": request(extra="X-Name: caf\xe9\r\n"),
    "absolute request URI": request().replace(b"GET / ", f"GET http://{HOST}/x ".encode()),
    "folded header line": request(extra="X-A: a\r\n b\r\n"),
}


@pytest.mark.parametrize("case", list(UPGRADED))
def test_unusual_but_valid_upgrades_are_served(wsrv, case, token):
    ws = WsWire(wsrv.ws_port)
    try:
        ws.raw.send(UPGRADED[case].replace(b"\xc3\xa9", b"\xe9"))
        line, headers, _ = read_response(ws.raw)
        assert line == "HTTP/1.1 101 Switching Protocols"
        assert headers["sec-websocket-accept"] == ws_accept_for(GOOD_KEY)
        assert ws.read_until(b"\r\n").startswith(b"INFO ")
        ws.send(b'CONNECT {"verbose":false}\r\n' + f"SUB u.{token} 1\r\nPUB u.{token} 2\r\nhi\r\nPING\r\n".encode())
        assert ws.read_until(b"PONG\r\n").endswith(f"MSG u.{token} 1 2\r\nhi\r\nPONG\r\n".encode())
    finally:
        ws.close()


def test_handshake_errors_are_logged_as_nats_server_logs_them(wsrv):
    with Wire(wsrv.ws_port) as w:
        w.send(request(key=""))
        read_response(w)
    poll_sync(lambda: "websocket handshake error: key missing" in wsrv.log_text())


# ------------------------------------------------------------------ origins ---

def upgrade_from(srv, origin: str | None, host: str | None = None) -> str:
    extra = f"Origin: {origin}\r\n" if origin is not None else ""
    host_line = f"Host: {host or f'{HOST}:{srv.ws_port}'}\r\n"
    with Wire(srv.ws_port) as w:
        w.send(request(host=host_line, extra=extra))
        line, _, body = read_response(w)
        if line.startswith("HTTP/1.1 403"):
            assert body == b"Forbidden\n"
        return line


def test_allowed_origins(make_server):
    srv = ws_server(make_server, 'allowed_origins: ["https://app.example", "http://localhost:8080"]')
    assert upgrade_from(srv, None) == "HTTP/1.1 101 Switching Protocols"
    assert upgrade_from(srv, "https://app.example") == "HTTP/1.1 101 Switching Protocols"
    assert upgrade_from(srv, "https://APP.example:443") == "HTTP/1.1 101 Switching Protocols"
    assert upgrade_from(srv, "http://localhost:8080") == "HTTP/1.1 101 Switching Protocols"
    for refused in ("https://evil.example", "http://app.example", "https://app.example:8443",
                    "http://localhost", "null", "https://app.example.evil.example"):
        assert upgrade_from(srv, refused) == "HTTP/1.1 403 Forbidden", refused
    poll_sync(lambda: "origin not allowed: not in the allowed list" in srv.log_text())
    no_panic(srv)


def test_single_allowed_origin_string(make_server):
    srv = ws_server(make_server, 'allowed_origins: "http://app.example:81"')
    assert upgrade_from(srv, "http://app.example:81") == "HTTP/1.1 101 Switching Protocols"
    assert upgrade_from(srv, "http://app.example") == "HTTP/1.1 403 Forbidden"
    no_panic(srv)


def test_same_origin(make_server):
    srv = ws_server(make_server, "same_origin: true")
    here = f"http://{HOST}:{srv.ws_port}"
    assert upgrade_from(srv, None) == "HTTP/1.1 101 Switching Protocols"
    assert upgrade_from(srv, here) == "HTTP/1.1 101 Switching Protocols"
    assert upgrade_from(srv, f"https://{HOST}:{srv.ws_port}") == "HTTP/1.1 403 Forbidden"
    assert upgrade_from(srv, f"http://{HOST}:{srv.ws_port + 1}") == "HTTP/1.1 403 Forbidden"
    assert upgrade_from(srv, "http://example.com", host="EXAMPLE.com:80") == "HTTP/1.1 101 Switching Protocols"
    poll_sync(lambda: "origin not allowed: not same origin" in srv.log_text())
    no_panic(srv)


@pytest.mark.parametrize("value, words", [
    ('["ftp://app.example"]', "allowed origins must be absolute URLs with http or https scheme"),
    ('["http://"]', "host is required"),
])
def test_bad_allowed_origin_refuses_to_start(make_server, value, words):
    srv = make_server(start=False)
    srv.config_path.write_text(
        f'websocket {{\n  host: "{HOST}"\n  port: {srv.ws_port}\n  no_tls: true\n  allowed_origins: {value}\n}}\n'
    )
    proc = srv.spawn()
    assert proc.wait(timeout=20) != 0
    assert words in srv.log_text()


# ------------------------------------------------------------------- frames ---

def connected(srv) -> WsWire:
    ws = WsWire(srv.ws_port)
    assert ws.upgrade()[0].startswith("HTTP/1.1 101")
    ws.read_until(b"\r\n")  # INFO
    return ws


def close_frame(ws: WsWire, timeout: float = 5.0) -> tuple[int, bytes]:
    """Skips data frames to the close frame: (status, reason)."""
    while True:
        opcode, _, payload = ws.frame(timeout)
        if opcode == 0x8:
            return struct.unpack(">H", payload[:2])[0], payload[2:]
        ws.stream += payload


def test_text_frame_with_invalid_utf8_is_processed(wsrv, token):
    ws = connected(wsrv)
    try:
        ws.send(f'CONNECT {{"verbose":false}}\r\nSUB t.{token} 1\r\n'.encode())
        ws.send(f"PUB t.{token} 2\r\n".encode() + b"\xff\xfe\r\nPING\r\n", opcode=0x1)
        assert ws.read_until(b"PONG\r\n").endswith(f"MSG t.{token} 1 2\r\n".encode() + b"\xff\xfe\r\nPONG\r\n")
    finally:
        ws.close()


def test_frame_is_handed_on_before_it_ends(wsrv):
    """A frame announcing 64 MiB whose first bytes are a PING is answered at once: nothing
    waits for (or makes room for) the whole frame."""
    ws = connected(wsrv)
    try:
        ws.raw.send(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", 64 << 20) + b"\0\0\0\0"
                    + b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert ws.read_until(b"PONG\r\n").endswith(b"PONG\r\n")
    finally:
        ws.close()


def flood_until_answered(ws: WsWire, chunks, limit: int) -> int:
    """Sends chunks until the server answers or closes; returns the bytes sent."""
    sent = 0
    for chunk in chunks:
        readable, _, _ = select.select([ws.raw.sock], [], [], 0)
        if readable or sent > limit:
            break
        try:
            ws.raw.sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return sent


def expect_control_line_close(ws: WsWire) -> None:
    status, reason = close_frame(ws)
    assert b"-ERR 'maximum control line exceeded'\r\n" in ws.stream
    assert (status, reason) == (1008, b"Maximum Control Line Exceeded")


def test_one_huge_frame_before_connect_is_bounded(wsrv):
    ws = connected(wsrv)
    try:
        ws.raw.send(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", 64 << 20) + b"\0\0\0\0" + b"PUB foo ")
        sent = flood_until_answered(ws, (b"a" * 16384 for _ in range(4096)), 32 << 20)
        assert sent < 32 << 20
        expect_control_line_close(ws)
        assert ws.raw.wait_closed(5)
    finally:
        ws.close()


def test_fragmented_message_before_connect_is_bounded(wsrv):
    ws = connected(wsrv)
    try:
        first = bytearray(ws_frame(b"PUB foo "))
        first[0] = 0x02  # binary, not final
        ws.raw.send(bytes(first))
        more = bytearray(ws_frame(b"a" * 4096, opcode=0x0))
        more[0] = 0x00  # continuation, not final
        sent = flood_until_answered(ws, (bytes(more) for _ in range(8192)), 32 << 20)
        assert sent < 32 << 20
        expect_control_line_close(ws)
    finally:
        ws.close()


@pytest.mark.parametrize("connect", [b"", b'CONNECT {"verbose":false}\r\n'])
def test_payload_over_max_payload_is_refused(wsrv, connect):
    ws = connected(wsrv)
    try:
        ws.send(connect + b"PUB foo 67108000\r\n")
        status, reason = close_frame(ws)
        assert b"-ERR 'Maximum Payload Violation'\r\n" in ws.stream
        assert (status, reason) == (1009, b"Maximum Message Payload Exceeded")
    finally:
        ws.close()


def test_ping_is_answered_and_close_echoed(wsrv):
    ws = connected(wsrv)
    try:
        ws.raw.send(ws_frame(b"hi", opcode=0x9))
        assert ws.frame() == (0xA, False, b"hi")
        ws.raw.send(ws_frame(struct.pack(">H", 1000) + b"bye", opcode=0x8))
        assert ws.frame() == (0x8, False, struct.pack(">H", 1000) + b"bye")
        assert ws.raw.wait_closed(5)
    finally:
        ws.close()


def test_close_without_status_gets_empty_close(wsrv):
    ws = connected(wsrv)
    try:
        ws.raw.send(ws_frame(b"", opcode=0x8))
        assert ws.frame() == (0x8, False, b"")
        assert ws.raw.wait_closed(5)
    finally:
        ws.close()


BAD_FRAMES = {
    "unknown opcode": (bytes([0x83, 0x80, 0, 0, 0, 0]), b"unknown opcode 3"),
    "continuation first": (bytes([0x80, 0x80, 0, 0, 0, 0]), b"invalid continuation frame"),
    "compressed": (bytes([0xC2, 0x80, 0, 0, 0, 0]),
                   b"compressed frame received without negotiated permessage-deflate"),
    "RSV2": (bytes([0xA2, 0x80, 0, 0, 0, 0]), b"RSV2 and RSV3 must be clear"),
    "unmasked": (bytes([0x82, 0x00]), b"mask bit missing"),
    "fragmented ping": (bytes([0x09, 0x80, 0, 0, 0, 0]), b"control frame does not have final bit set"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frames_end_the_connection(wsrv, case, edgebus_only):
    """nats-server queues a `1002` close with its reason, then closes without flushing, so a
    client sees that frame or just the end; edgebus always sends the frame."""
    raw, reason = BAD_FRAMES[case]
    ws = connected(wsrv)
    try:
        ws.raw.send(raw)
        try:
            got = close_frame(ws)
        except TimeoutError:
            got = None
            assert ws.raw.closed
        if edgebus_only or got is not None:
            assert got == (1002, reason)
        assert ws.raw.wait_closed(5)
        poll_sync(lambda: "read error: " + reason.decode() in wsrv.log_text())
    finally:
        ws.close()
