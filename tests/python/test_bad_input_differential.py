"""Bad client input, answered as nats-server 2.14 answers it.

Each input goes over a raw socket to nats-server and to the server under test; what comes back
(the operations, INFO dropped, and whether the connection was closed) must be the same. Where
nats-server closes the connection it logs an error line (`Client parser ERROR`, `processPub
Bad or Missing Size`, …): the server under test must log one too.
"""

from __future__ import annotations

import os
import re
import select
import socket
import time

import pytest

from conftest import NATS_SERVER_BIN, Server
from test_differential import QUIET, exchange, split_ops

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)

NOT_VERBOSE = b'CONNECT {"verbose":false}\r\n'

# (name, connect line, bytes after it); each is followed by PING.
CASES = [
    # the cases issue 14 names
    ("pub_size_over_nine_digits", QUIET, b"PUB foo 1099511627776\r\n"),
    ("unsub_sid_not_a_number", QUIET, b"SUB a abc\r\nUNSUB abc\r\nPUB a 1\r\nx\r\n"),
    ("unsub_negative_max", QUIET, b"SUB a 1\r\nUNSUB 1 -5\r\nPUB a 1\r\nx\r\n"),
    ("pub_without_anything", QUIET, b"PUB\r\n"),
    ("connect_array", b"CONNECT []\r\n", b""),
    ("connect_array_of_fields", b"CONNECT [false,false]\r\n", b""),
    ("connect_null", b"CONNECT null\r\n", b""),
    ("connect_invalid_utf8", b'CONNECT {"name":"\xff\xfe","verbose":false}\r\n', b""),
    # neighbours: sizes
    ("pub_negative_size", QUIET, b"PUB foo -1\r\n"),
    ("pub_plus_size", QUIET, b"PUB foo +1\r\n"),
    ("pub_ten_digits", QUIET, b"PUB foo 1000000000\r\n"),
    ("pub_nine_digits_over_limit", QUIET, b"PUB foo 999999999\r\n"),
    ("pub_size_with_cr_inside", QUIET, b"PUB foo 1\rx\r\n"),
    ("hpub_negative_header_size", QUIET, b"HPUB foo -1 5\r\n"),
    ("hpub_header_size_not_a_number", QUIET, b"HPUB foo x 5\r\n"),
    ("hpub_total_over_nine_digits", QUIET, b"HPUB foo 1 1099511627776\r\n"),
    ("hpub_header_over_total", QUIET, b"HPUB foo 12 5\r\n"),
    ("hpub_zero_total", QUIET, b"SUB foo 1\r\nHPUB foo 0 0\r\n\r\n"),
    # neighbours: argument counts and verbs
    ("pub_space_only", QUIET, b"PUB \r\n"),
    ("pub_one_arg", QUIET, b"PUB foo\r\n"),
    ("pub_four_args", QUIET, b"PUB foo a b 1\r\nx\r\n"),
    ("pub_verb_attached", QUIET, b"PUBX foo 1\r\n"),
    ("pub_tab_after_verb", QUIET, b"SUB foo 1\r\nPUB\tfoo 1\r\nx\r\n"),
    ("sub_without_anything", QUIET, b"SUB\r\n"),
    ("sub_one_arg", QUIET, b"SUB foo\r\n"),
    ("sub_four_args", QUIET, b"SUB a b c d\r\n"),
    ("unsub_without_anything", QUIET, b"UNSUB\r\n"),
    ("unsub_three_args", QUIET, b"UNSUB 1 2 3\r\n"),
    ("unsub_max_not_a_number", QUIET, b"SUB a 1\r\nUNSUB\t1 x\r\nPUB a 1\r\nx\r\n"),
    ("unsub_max_zero", QUIET, b"SUB a 1\r\nUNSUB 1 0\r\nPUB a 1\r\nx\r\n"),
    ("hpub_without_anything", QUIET, b"HPUB\r\n"),
    ("hpub_one_size", QUIET, b"HPUB foo 5\r\nhello\r\n"),
    ("hmsg_from_client", QUIET, b"HMSG foo 1 2\r\nhi\r\n"),
    ("ping_with_trailing_bytes", QUIET, b"PINGxyz\r\nPING foo\r\n"),
    ("ping_with_long_tail", QUIET, b"PING" + b"x" * 10000 + b"\r\n"),
    ("ok_with_trailing_bytes", QUIET, b"+OKjunk\r\n"),
    ("err_without_space", QUIET, b"-ERR\r\n"),
    ("err_from_client", QUIET, b"-ERR x\r\n"),
    ("empty_line", QUIET, b"\r\n"),
    ("bare_newline", QUIET, b"\n"),
    ("space_before_verb", QUIET, b" PING\r\n"),
    ("info_not_json", QUIET, b"INFO garbage\r\n"),
    ("info_attached_object", QUIET, b"INFO{}\r\n"),
    # neighbours: headers
    ("header_block_without_nats_1_0", QUIET, b"SUB foo 1\r\nHPUB foo 6 8\r\nXX\r\n\r\nhi\r\n"),
    ("header_block_unterminated", QUIET, b"SUB foo 1\r\nHPUB foo 10 12\r\nNATS/1.0\r\nhi\r\n"),
    ("hpub_when_headers_not_enabled", NOT_VERBOSE, b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    # neighbours: CONNECT
    ("connect_number", b"CONNECT 5\r\n", b""),
    ("connect_string", b'CONNECT "x"\r\n', b""),
    ("connect_empty", b"CONNECT\r\n", b""),
    ("connect_wrong_type", b'CONNECT {"verbose":"yes"}\r\n', b""),
    ("connect_attached", b'CONNECT{"verbose":false}\r\n', b""),
    ("connect_lower_case", b'connect {"verbose":false}\r\n', b""),
]


def error_lines(server: Server) -> int:
    """Error-level lines in a server's log (nats-server's `[ERR]`, edgebus's `ERROR`/`WARN`)."""
    return len(re.findall(r"\[ERR\]| ERROR | WARN ", server.log_text()))


def wait_for_error_line(server: Server, before: int, timeout: float = 5.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        n = error_lines(server)
        if n > before:
            return n - before
        time.sleep(0.02)
    return 0


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ours = Server(tmp_path_factory.mktemp("ours")).start()
    ref = Server(tmp_path_factory.mktemp("ref"),
                 template=NATS_SERVER_BIN + " -a 127.0.0.1 -p {port} -m {http_port} -c {config}").start()
    yield ours, ref
    ours.stop()
    ref.stop()


def compare(pair, connect: bytes, body: bytes, run=exchange):
    ours, ref = pair
    ref_before, ours_before = error_lines(ref), error_lines(ours)
    want = run(ref.port, connect, body)
    got = run(ours.port, connect, body)
    assert got == want, f"nats-server answered {want!r}"
    closed = want[-1]
    if closed:
        assert wait_for_error_line(ref, ref_before) >= 1, "nats-server logs each of these"
        assert wait_for_error_line(ours, ours_before) == 1, f"no error line in our log:\n{ours.log_text()[-2000:]}"


@pytest.mark.parametrize("name,connect,body", CASES, ids=[c[0] for c in CASES])
def test_bad_input_answered_as_nats_server(pair, name, connect, body):
    compare(pair, connect, body)


def flood(port: int, connect: bytes, head: bytes, filler: bytes, total: int) -> tuple[list[bytes], bool]:
    """Sends `head` then `filler` up to `total` bytes without a newline, stopping as soon as the
    server answers; returns what it answered and whether it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        s.sendall(connect + head)
        chunk = filler * (65536 // len(filler))
        sent, got, closed = 0, b"", False
        try:
            while sent < total:
                readable, _, _ = select.select([s], [], [], 0)
                if readable:
                    break
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(5)
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    closed = True
                    break
                got += c
                if b"-ERR" in got and got.endswith(b"\r\n"):
                    closed = not s.recv(65536)
                    break
        except ConnectionResetError:
            closed = True
        return split_ops(got), closed


@pytest.mark.parametrize("name,head,filler", [
    ("line_of_garbage", b"", b"A"),
    ("verb_then_no_space", b"PUB", b"x"),
    ("connect_argument_without_end", b"CONNECT ", b"x"),
    ("sub_argument_without_end", b"SUB ", b"a"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_100mb_line_without_newline(pair, name, head, filler):
    compare(pair, QUIET, head, run=lambda port, connect, h: flood(port, connect, h, filler, 100 * 1024 * 1024))


def drip(port: int, connect: bytes, op: bytes) -> tuple[bytes, bool, bool]:
    """Sends `op` one byte every 100 ms (a slow-loris client); returns the answer, whether it
    came before the op's newline was sent, and whether the connection was closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        s.sendall(connect)
        for i, b in enumerate(op):
            s.sendall(bytes([b]))
            readable, _, _ = select.select([s], [], [], 0.1)
            if readable:
                answer = s.recv(65536)
                s.settimeout(5)
                try:
                    closed = not answer or not s.recv(65536)
                except ConnectionResetError:
                    closed = True
                return answer, i < len(op) - 1, closed
        return b"", False, False


@pytest.mark.parametrize("op", [b"SUBSCRIBE foo 1\r\n", b"PUSH foo 1\r\n", b"CO NNECT {}\r\n"])
def test_slow_loris_op_is_refused_at_its_first_bad_byte(pair, op):
    compare(pair, NOT_VERBOSE, op, run=drip)
