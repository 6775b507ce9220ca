"""Helpers for edgebus's end-to-end tests: raw protocol sockets, polling, HTTP.

Nothing here is a fixture; conftest.py builds the fixtures on top of it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import time
import urllib.request

import nats

HOST = "127.0.0.1"


# ---------------------------------------------------------------- nats-py ---

async def nats_connect(url: str, **kw):
    """A nats-py connection that fails fast instead of reconnecting."""
    kw.setdefault("allow_reconnect", False)
    kw.setdefault("connect_timeout", 5)
    kw.setdefault("max_reconnect_attempts", 0)
    return await nats.connect(url, **kw)


async def settle(*conns) -> None:
    """Wait until the server has seen every command sent so far on `conns`.

    nats-py 2.16 writes flush()'s PING directly to the socket, possibly ahead
    of a SUB still sitting in its pending buffer, so one flush() is not a
    round trip after a fresh subscribe. The second one is queued behind it.
    """
    for nc in conns:
        for _ in range(2):
            await nc.flush(timeout=5)


async def poll(check, timeout: float = 5.0, every: float = 0.02):
    """Call `check` (sync or async) until it returns something truthy or the
    time is up; returns the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(every)


def poll_sync(check, timeout: float = 5.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


async def take(sub, count: int, timeout: float = 3.0) -> list:
    """Up to `count` messages from a nats-py subscription within `timeout`."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            got.append(await sub.next_msg(timeout=remaining))
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            break
    return got


async def expect_silence(sub, wait: float = 0.3) -> None:
    """Fail if `sub` receives anything within `wait` seconds."""
    try:
        msg = await sub.next_msg(timeout=wait)
    except (nats.errors.TimeoutError, asyncio.TimeoutError):
        return
    raise AssertionError(f"unexpected message on {msg.subject!r}: {msg.data!r}")


# ------------------------------------------------------------------- HTTP ---

def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{HOST}:{port}{path}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:  # non-2xx still carries a body
        return e.code, e.read()


def http_json(port: int, path: str) -> dict:
    status, body = http_get(port, path)
    assert status == 200, f"GET {path} -> {status}: {body[:200]!r}"
    return json.loads(body)


# ------------------------------------------------------------ raw sockets ---

class Wire:
    """A TCP connection that speaks the NATS text protocol byte by byte.

    Reads accumulate in `self.pending`; `closed` turns true once the peer has
    closed (or reset) the connection.
    """

    def __init__(self, port: int, host: str = HOST, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect((host, port))
        self.pending = b""
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_some(self, deadline: float) -> bool:
        """One recv() bounded by `deadline`; False on timeout or EOF."""
        if self.closed:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.pending += data
        return True

    def line(self, timeout: float = 3.0) -> bytes:
        """Next CRLF-terminated line, without the CRLF."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.pending:
            if not self._recv_some(deadline):
                raise TimeoutError(f"no complete line (closed={self.closed}); got {self.pending[:200]!r}")
        head, _, self.pending = self.pending.partition(b"\r\n")
        return head

    def until(self, marker: bytes, timeout: float = 3.0) -> bytes:
        """Everything up to and including the first `marker`."""
        deadline = time.monotonic() + timeout
        while marker not in self.pending:
            if not self._recv_some(deadline):
                raise TimeoutError(f"{marker!r} not received (closed={self.closed}); got {self.pending[:300]!r}")
        end = self.pending.index(marker) + len(marker)
        head, self.pending = self.pending[:end], self.pending[end:]
        return head

    def exactly(self, count: int, timeout: float = 3.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.pending) < count:
            if not self._recv_some(deadline):
                raise TimeoutError(f"wanted {count} bytes, have {len(self.pending)} (closed={self.closed})")
        head, self.pending = self.pending[:count], self.pending[count:]
        return head

    def gather(self, seconds: float) -> bytes:
        """All bytes arriving within `seconds` (returns early on EOF)."""
        deadline = time.monotonic() + seconds
        while self._recv_some(deadline):
            pass
        out, self.pending = self.pending, b""
        return out

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """True once the server closed the connection; discards what arrives."""
        deadline = time.monotonic() + timeout
        while not self.closed and self._recv_some(deadline):
            self.pending = self.pending[-8192:]
        return self.closed

    def info(self) -> dict:
        first = self.line()
        assert first.startswith(b"INFO "), f"expected INFO first, got {first[:120]!r}"
        return json.loads(first[5:])

    def hello(self, sync: bool = True, **fields) -> dict:
        """Read INFO, send a quiet CONNECT (fields override), return INFO.

        With `sync` it also waits for the server to have processed it."""
        info = self.info()
        opts = {"verbose": False, "pedantic": False, "headers": True,
                "no_responders": True, "protocol": 1, "lang": "raw", "name": "wire"}
        opts.update(fields)
        self.send(b"CONNECT " + json.dumps(opts).encode() + b"\r\n")
        if sync:
            # The first PONG after a protocol-1 CONNECT is followed by an
            # extra INFO (connect_info); a second PING/PONG swallows it so
            # later reads start clean.
            self.roundtrip()
            self.roundtrip()
        return info

    def roundtrip(self, timeout: float = 3.0) -> bytes:
        """PING and return everything received up to the PONG (inclusive)."""
        self.send(b"PING\r\n")
        return self.until(b"PONG\r\n", timeout)


# ---------------------------------------------------------- WebSocket raw ---

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_frame(payload: bytes, opcode: int = 0x2, mask: bool = True) -> bytes:
    """One FIN frame from client to server (masked unless told otherwise)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    mbit = 0x80 if mask else 0
    if size < 126:
        head += bytes([mbit | size])
    elif size < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", size)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


class WsWire:
    """A hand-rolled WebSocket client over a raw socket (for byte checks)."""

    def __init__(self, port: int, path: str = "/"):
        self.raw = Wire(port)
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.path = path
        self.stream = b""  # reassembled NATS bytes from data frames

    def close(self) -> None:
        self.raw.close()

    def upgrade(self, extra_headers: str = "") -> tuple[str, dict]:
        req = (
            f"GET {self.path} HTTP/1.1\r\n"
            f"Host: {HOST}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            f"{extra_headers}\r\n"
        )
        self.raw.send(req.encode())
        head = self.raw.until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        headers = {}
        for h in lines[1:]:
            if ":" in h:
                k, v = h.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return lines[0], headers

    def frame(self, timeout: float = 3.0) -> tuple[int, bool, bytes]:
        """Next server frame: (opcode, masked, payload)."""
        b0, b1 = self.raw.exactly(2, timeout)
        opcode = b0 & 0x0F
        masked = bool(b1 & 0x80)
        size = b1 & 0x7F
        if size == 126:
            size = struct.unpack(">H", self.raw.exactly(2, timeout))[0]
        elif size == 127:
            size = struct.unpack(">Q", self.raw.exactly(8, timeout))[0]
        key = self.raw.exactly(4, timeout) if masked else b""
        payload = self.raw.exactly(size, timeout)
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return opcode, masked, payload

    def send(self, data: bytes, opcode: int = 0x2) -> None:
        self.raw.send(ws_frame(data, opcode))

    def read_until(self, marker: bytes, timeout: float = 3.0) -> bytes:
        """NATS bytes (across data frames) up to and including `marker`."""
        deadline = time.monotonic() + timeout
        while marker not in self.stream:
            opcode, _, payload = self.frame(max(0.05, deadline - time.monotonic()))
            if opcode in (0x1, 0x2, 0x0):
                self.stream += payload
            elif opcode == 0x8:
                raise ConnectionError(f"close frame {payload!r} while waiting for {marker!r}")
        end = self.stream.index(marker) + len(marker)
        head, self.stream = self.stream[:end], self.stream[end:]
        return head


# -------------------------------------------------------------- JetStream ---

async def js_api(nc, subject: str, body=None, timeout: float = 5.0) -> dict:
    """A raw JetStream API request (`$JS.API.…`); returns the decoded JSON
    response, error responses included (look at `resp.get("error")`)."""
    if body is None:
        payload = b""
    elif isinstance(body, (bytes, bytearray)):
        payload = bytes(body)
    else:
        payload = json.dumps(body).encode()
    msg = await nc.request(subject, payload, timeout=timeout)
    return json.loads(msg.data)


async def stream_state(js, stream: str):
    """`StreamState` of `stream` (nats-py's dataclass)."""
    return (await js.stream_info(stream)).state


async def wait_state(js, stream: str, check, timeout: float = 10.0):
    """Poll the stream's state until `check(state)` holds; returns the last state."""
    last = None

    async def probe():
        nonlocal last
        last = await stream_state(js, stream)
        return check(last)

    await poll(probe, timeout=timeout, every=0.05)
    return last


async def wait_consumer(js, stream: str, consumer: str, check, timeout: float = 10.0):
    """Poll consumer info until `check(info)` holds; returns the last info."""
    last = None

    async def probe():
        nonlocal last
        last = await js.consumer_info(stream, consumer)
        return check(last)

    await poll(probe, timeout=timeout, every=0.05)
    return last
