"""Differential checks: the same raw protocol bytes go to nats-server 2.14 and to the server
under test, and what comes back must match.

Outputs are compared operation by operation, in order, with INFO lines dropped (ids, ports and
the connect_info INFO differ by nature). Where one message reaches several subscriptions,
nats-server's own order among them is map order, so there only the multiset between two
PONGs is compared. Connection-ending errors must match byte for byte,
including whether the server closes silently.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from conftest import NATS_SERVER_BIN, Server

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)

QUIET = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n'
PEDANTIC = b'CONNECT {"verbose":true,"pedantic":true,"headers":true,"no_responders":true,"protocol":1}\r\n'

# (name, connect line, bytes sent after it). Every scenario ends with PING unless the input
# ends the connection.
SCENARIOS = [
    ("pub_sub_reply_headers", QUIET,
     b"SUB foo 1\r\nPUB foo bar 5\r\nhello\r\nHPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
    ("wildcard_publish_is_literal", QUIET,
     b"SUB a.> 1\r\nSUB a.b 2\r\nSUB a.* 3\r\nPUB a.* 1\r\nx\r\nPUB a.> 1\r\ny\r\n"),
    ("invalid_subscriptions", QUIET,
     b"SUB foo..bar 1\r\nSUB .foo 2\r\nSUB foo. 3\r\nSUB foo.>.bar 4\r\nSUB foo*.bar 5\r\nPUB foo*.bar 0\r\n\r\n"),
    ("auto_unsubscribe", QUIET,
     b"SUB n 7\r\nUNSUB 7 2\r\nPUB n 1\r\na\r\nPUB n 1\r\nb\r\nPUB n 1\r\nc\r\n"),
    ("unsubscribe_after_reached", QUIET,
     b"SUB n 7\r\nPUB n 1\r\na\r\nPUB n 1\r\nb\r\nUNSUB 7 1\r\nPUB n 1\r\nc\r\nUNSUB 99\r\n"),
    ("sid_reuse_keeps_first", QUIET, b"SUB one 1\r\nSUB two 1\r\nPUB one 1\r\na\r\nPUB two 1\r\nb\r\n"),
    ("empty_and_binary_payloads", QUIET,
     b"SUB bin 1\r\nPUB bin 0\r\n\r\nPUB bin 6\r\n\r\n\x00\xff\r\n\r\n"),
    ("spacing_case_and_bare_newlines", QUIET,
     b"sub  sp\t 1\r\npub   sp    r   2\r\nok\r\nPUB sp 2\nok\r\nSUB q\tg 2\r\nPUB q 1\r\nz\r\n"),
    ("zero_header_hpub_is_msg", QUIET, b"SUB h 1\r\nHPUB h 0 2\r\nm0\r\n"),
    ("queue_groups_and_plain", QUIET,
     b"SUB w g1 1\r\nSUB w g2 3\r\nSUB w 4\r\nPUB w 1\r\nx\r\n"),
    ("no_responders", QUIET, b"SUB _INBOX.x.* 1\r\nPUB nobody.home _INBOX.x.1 0\r\n\r\nPUB nobody _INBOX.x.2 2\r\nhi\r\n"),
    ("reserved_reply_prefixes", QUIET, b"SUB r 1\r\nPUB r _R_.x 1\r\na\r\nPUB r $JS.ACK.x 1\r\nb\r\nPUB r ok 1\r\nc\r\n"),
    ("pedantic_and_verbose", PEDANTIC,
     b"SUB a.> 1\r\nPUB a.* 1\r\nx\r\nPUB a..b 1\r\ny\r\nSUB bad..sub 2\r\nUNSUB 1\r\n"),
    ("verbose_reserved_reply_and_nrg", PEDANTIC, b"SUB r 1\r\nPUB r _R_.x 1\r\na\r\nPUB $NRG.x 1\r\nb\r\nPUB r ok 1\r\nc\r\n"),
    ("verbose_unsub_unknown_and_sid_reuse", PEDANTIC, b"UNSUB 42\r\nSUB s 1\r\nSUB t 1\r\nUNSUB 1 5\r\n"),
    ("unknown_operation", QUIET, b"FOO BAR\r\n"),
    ("payload_not_crlf", QUIET, b"PUB foo 2\r\nhello\r\n"),
    ("missing_args", QUIET, b"PUB foo\r\n"),
    ("non_numeric_size", QUIET, b"PUB foo abc\r\n"),
    ("too_many_sub_args", QUIET, b"SUB foo q 1 x\r\n"),
    ("header_bigger_than_total", QUIET, b"HPUB foo 12 5\r\n"),
    ("unsub_without_sid", QUIET, b"UNSUB\r\n"),
    ("msg_from_client", QUIET, b"MSG foo 1 2\r\nhi\r\n"),
    ("client_err", QUIET, b"-ERR 'nope'\r\n"),
    ("max_payload", QUIET, b"PUB foo 1048577\r\n"),
    ("control_line_too_long", QUIET, b"PUB " + b"x" * 5000 + b" 1\r\n"),
    ("hpub_without_headers", b'CONNECT {"verbose":false,"pedantic":false}\r\n', b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    ("bad_connect_json", b"CONNECT {nope\r\n", b""),
    ("protocol_out_of_range", b'CONNECT {"verbose":false,"protocol":2}\r\n', b""),
    ("no_responders_needs_headers", b'CONNECT {"verbose":false,"no_responders":true}\r\n', b""),
    ("info_and_ok_from_client_ignored", QUIET, b"INFO {}\r\n+OK\r\nSUB i 1\r\nPUB i 1\r\nz\r\n"),
]


# Scenarios where one message reaches several subscriptions: nats-server's order among them
# is its map order, so only the set is compared.
UNORDERED = {"wildcard_publish_is_literal", "queue_groups_and_plain", "pub_sub_reply_headers"}


def exchange(port: int, connect: bytes, body: bytes, wait: float = 15.0) -> tuple[list[bytes], bool]:
    """Sends CONNECT + body + PING; returns the operations received (INFO dropped) and
    whether the server closed the connection.

    Every scenario here (and in test_bad_input_differential) ends on an arrival, the PONG or
    the close, within 0.3 s on both servers; `wait` only bounds a server that never answers.
    It was 1.5 s, short enough for a loaded machine to cut a reply in half."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        buf = buf.split(b"\r\n", 1)[1]
        s.sendall(connect + body + b"PING\r\n")
        closed = False
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if b"PONG\r\n" in buf and not body.startswith(b"PUB " + b"x"):
                break
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
    return split_ops(buf), closed


def split_ops(buf: bytes) -> list[bytes]:
    ops = []
    while buf:
        line, sep, rest = buf.partition(b"\r\n")
        if not sep:
            ops.append(buf)
            break
        verb = line.split(b" ", 1)[0]
        if verb in (b"MSG", b"HMSG"):
            size = int(line.rsplit(b" ", 1)[1])
            ops.append(line + b"\r\n" + rest[:size])
            buf = rest[size + 2:]
        else:
            if verb != b"INFO":
                ops.append(line)
            buf = rest
    return ops


def normalise(ops: list[bytes]) -> list[list[bytes]]:
    """Groups operations between PONGs and sorts each group's messages."""
    groups, cur = [], []
    for op in ops:
        if op == b"PONG":
            groups.append(sorted(cur) + [b"PONG"])
            cur = []
        else:
            cur.append(op)
    groups.append(sorted(cur))
    return groups


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ours = Server(tmp_path_factory.mktemp("ours")).start()
    ref = Server(tmp_path_factory.mktemp("ref"),
                 template=NATS_SERVER_BIN + " -a 127.0.0.1 -p {port} -m {http_port} -c {config}").start()
    yield ours, ref
    ours.stop()
    ref.stop()


@pytest.mark.parametrize("name,connect,body", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_same_bytes_as_nats_server(pair, name, connect, body):
    ours, ref = pair
    want_ops, want_closed = exchange(ref.port, connect, body)
    got_ops, got_closed = exchange(ours.port, connect, body)
    if name in UNORDERED:
        assert normalise(got_ops) == normalise(want_ops), f"{name}: nats-server sent {want_ops!r}"
    else:
        assert got_ops == want_ops, f"{name}: nats-server sent {want_ops!r}"
    assert got_closed == want_closed, f"{name}: nats-server {'closed' if want_closed else 'kept'} the connection"
