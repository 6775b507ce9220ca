"""JetStream differential checks: the same requests, as raw protocol bytes, go to nats-server
2.14 and to the server under test (both with JetStream on, each on a fresh store), and the
replies must match.

Each step's replies are read up to a known end (one reply, or a direct-get batch's closing
status), so nothing waits for "nothing more". A reply is compared as its header block byte
for byte (status line, header names, values and order; only the stored message's time,
`Nats-Time-Stamp`, is masked since the two servers store at different moments) and its
payload: bytes, or for JSON the parsed value with time fields masked (key order is not part
of JSON, and nats-server's API replies put `type` first while edgebus orders keys; and
`cluster`, which only names the nats-server's id).
"""

from __future__ import annotations

import json
import os
import re

import pytest

from conftest import NATS_SERVER_BIN, Server
from edgehelp import Wire

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)

TIME_HEADER = re.compile(rb"(Nats-Time-Stamp: )[^\r]*")
TIME_KEYS = {"created", "ts", "first_ts", "last_ts", "time", "last_active"}

KV = {"name": "KV_b", "subjects": ["$KV.b.>"], "max_msgs_per_subject": 5, "allow_rollup_hdrs": True,
      "deny_delete": True, "allow_direct": True, "storage": "memory"}

# (name, subject, headers, payload, end): end is "one" (a single reply) or "eob" (replies up
# to a status message: a batch's 204 EOB, or the 404/408 that refuses it).
STEPS = [
    ("create a KV stream", "$JS.API.STREAM.CREATE.KV_b", None, KV, "one"),
    ("put k", "$KV.b.k", None, "v1", "one"),
    ("put j", "$KV.b.j", [("X-Trace", "abc")], "j1", "one"),
    ("put k again", "$KV.b.k", None, "v2", "one"),
    ("put a.b", "$KV.b.a.b", None, "ab", "one"),
    ("multi_last over the bucket", "$JS.API.DIRECT.GET.KV_b", None, {"multi_last": ["$KV.b.>"]}, "eob"),
    ("multi_last over one token", "$JS.API.DIRECT.GET.KV_b", None, {"multi_last": ["$KV.b.*"]}, "eob"),
    ("multi_last up to a sequence", "$JS.API.DIRECT.GET.KV_b", None,
     {"multi_last": ["$KV.b.>"], "up_to_seq": 3}, "eob"),
    ("multi_last in batches", "$JS.API.DIRECT.GET.KV_b", None, {"multi_last": ["$KV.b.>"], "batch": 2}, "eob"),
    ("multi_last from a sequence", "$JS.API.DIRECT.GET.KV_b", None, {"multi_last": ["$KV.b.>"], "seq": 3}, "eob"),
    ("multi_last matching nothing", "$JS.API.DIRECT.GET.KV_b", None, {"multi_last": ["$KV.b.none"]}, "eob"),
    ("batch from a sequence", "$JS.API.DIRECT.GET.KV_b", None, {"seq": 2, "batch": 2}, "eob"),
    ("batch along a filter", "$JS.API.DIRECT.GET.KV_b", None, {"next_by_subj": "$KV.b.k", "batch": 10}, "eob"),
    ("batch without headers", "$JS.API.DIRECT.GET.KV_b", None, {"seq": 1, "batch": 2, "no_hdr": True}, "eob"),
    ("batch past the end", "$JS.API.DIRECT.GET.KV_b", None, {"seq": 9, "batch": 2}, "eob"),
    ("batch with last_by_subj", "$JS.API.DIRECT.GET.KV_b", None, {"last_by_subj": "$KV.b.k", "batch": 2}, "eob"),
    ("batch with nothing to start from", "$JS.API.DIRECT.GET.KV_b", None, {"batch": 2}, "eob"),
    ("multi_last with next_by_subj", "$JS.API.DIRECT.GET.KV_b", None,
     {"multi_last": ["$KV.b.>"], "next_by_subj": "$KV.b.k"}, "eob"),
    ("subject form with a body", "$JS.API.DIRECT.GET.KV_b.$KV.b.k", None, {"seq": 1}, "eob"),
    ("subject form", "$JS.API.DIRECT.GET.KV_b.$KV.b.j", None, "", "one"),
    # the expected last message id is the last message's, "" when it had none
    ("publish with an id", "$KV.b.k", [("Nats-Msg-Id", "m1")], "v3", "one"),
    ("publish without an id", "$KV.b.k", None, "v4", "one"),
    ("expect the id of an earlier message", "$KV.b.k", [("Nats-Expected-Last-Msg-Id", "m1")], "x", "one"),
    ("an empty expectation is none", "$KV.b.k", [("Nats-Expected-Last-Msg-Id", "")], "v5", "one"),
    # stream config errors
    ("duplicate subjects", "$JS.API.STREAM.CREATE.T", None, {"name": "T", "subjects": ["t.a", "t.a"]}, "one"),
    ("a subject inside another", "$JS.API.STREAM.CREATE.T", None, {"name": "T", "subjects": ["t.>", "t.a"]}, "one"),
    ("subjects that do not overlap", "$JS.API.STREAM.CREATE.T", None,
     {"name": "T", "subjects": ["hello", "world", "hello.>"], "storage": "memory"}, "one"),
    ("an invalid subject", "$JS.API.STREAM.CREATE.U", None, {"name": "U", "subjects": ["u..x"]}, "one"),
    ("a bad rollup", "$KV.b.k", [("Nats-Rollup", "Everything")], "x", "one"),
    # consumers
    ("the subject's name wins over the config's", "$JS.API.CONSUMER.CREATE.KV_b.X1", None,
     {"stream_name": "KV_b", "config": {"name": "X2", "ack_policy": "explicit"}}, "one"),
    ("a filter outside the stream", "$JS.API.CONSUMER.CREATE.KV_b.F1", None,
     {"stream_name": "KV_b", "config": {"name": "F1", "ack_policy": "explicit", "filter_subject": "elsewhere.>"}},
     "one"),
    ("an invalid filter", "$JS.API.CONSUMER.CREATE.KV_b.F2", None,
     {"stream_name": "KV_b", "config": {"name": "F2", "filter_subject": "a..b"}}, "one"),
    ("last per subject", "$JS.API.CONSUMER.CREATE.KV_b.W1", None,
     {"stream_name": "KV_b", "config": {"name": "W1", "deliver_policy": "last_per_subject", "ack_policy": "none",
                                        "filter_subject": "$KV.b.>"}}, "one"),
    ("consumer list", "$JS.API.CONSUMER.LIST.KV_b", None, {}, "one"),
    ("pull from an unknown consumer", "$JS.API.CONSUMER.MSG.NEXT.KV_b.NOPE", None, {"batch": 1}, "one"),
    # stream info
    ("info with subjects", "$JS.API.STREAM.INFO.KV_b", None, {"subjects_filter": "$KV.b.*"}, "one"),
    ("info with deleted details", "$JS.API.STREAM.INFO.KV_b", None, {"deleted_details": True}, "one"),
    ("info of an unknown stream", "$JS.API.STREAM.INFO.NOPE", None, "", "one"),
    ("mirror_direct without a mirror", "$JS.API.STREAM.CREATE.M", None, {"name": "M", "mirror_direct": True}, "one"),
    # nats.py's kv.purge("hello.*"): a rollup on a wildcard subject rolls up all it matches
    ("a rollup on a wildcard subject", "$KV.b.*", [("Nats-Rollup", "sub")], "", "one"),
    ("info after the wildcard rollup", "$JS.API.STREAM.INFO.KV_b", None, {"subjects_filter": ">"}, "one"),
    # state.bytes as each store counts them (the file store: record header, checksum)
    ("a file stream", "$JS.API.STREAM.CREATE.FB", None, {"name": "FB", "subjects": ["fb"]}, "one"),
    ("a message in it", "fb", None, "Hello world!", "one"),
    ("one with headers", "fb", [("X", "y")], "Hello world!", "one"),
    ("its bytes", "$JS.API.STREAM.INFO.FB", None, "", "one"),
    ("seal it", "$JS.API.STREAM.UPDATE.FB", None, {"name": "FB", "subjects": ["fb"], "sealed": True}, "one"),
    ("purge a sealed stream", "$JS.API.STREAM.PURGE.FB", None, {"filter": "fb"}, "one"),
    ("stream list", "$JS.API.STREAM.LIST", None, {}, "one"),
    ("account info", "$JS.API.INFO", None, "", "one"),
]


def request(inbox: str, subject: str, headers, payload) -> bytes:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    data = body.encode()
    if headers is None:
        return f"PUB {subject} {inbox} {len(data)}\r\n".encode() + data + b"\r\n"
    block = b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n"
    return f"HPUB {subject} {inbox} {len(block)} {len(block) + len(data)}\r\n".encode() + block + data + b"\r\n"


def read_msg(w: Wire) -> tuple[bytes, bytes]:
    """The next message's header block (b"" for MSG) and payload; PONGs are skipped."""
    while True:
        line = w.line()
        parts = line.split(b" ")
        if parts[0] == b"MSG":
            return b"", w.exactly(int(parts[-1]) + 2)[:-2]
        if parts[0] == b"HMSG":
            hlen, total = int(parts[-2]), int(parts[-1])
            raw = w.exactly(total + 2)[:-2]
            return raw[:hlen], raw[hlen:]
        assert parts[0] in (b"PONG", b"PING", b"+OK", b"INFO"), line


def mask(v):
    if isinstance(v, dict):
        # `cluster` names nats-server's own id (edgebus, never clustered, leaves it out)
        return {k: "<time>" if k in TIME_KEYS else mask(x) for k, x in v.items() if k != "cluster"}
    if isinstance(v, list):
        return [mask(x) for x in v]
    return v


def comparable(hdr: bytes, payload: bytes):
    hdr = TIME_HEADER.sub(rb"\1<time>", hdr)
    if payload.startswith(b"{"):
        return hdr, mask(json.loads(payload))
    return hdr, payload


def play(port: int) -> list[tuple[str, list]]:
    out = []
    with Wire(port) as w:
        w.hello()
        w.send(b"SUB _INBOX.d.> 1\r\n")
        w.roundtrip()
        for i, (name, subject, headers, payload, end) in enumerate(STEPS):
            w.send(request(f"_INBOX.d.{i}", subject, headers, payload))
            replies = []
            while True:
                hdr, body = read_msg(w)
                replies.append(comparable(hdr, body))
                status = hdr.split(b"\r\n", 1)[0][len(b"NATS/1.0"):].strip()
                if end == "one" or status:
                    break
            out.append((name, replies))
    return out


@pytest.fixture(scope="module")
def js_pair(tmp_path_factory):
    ours = Server(tmp_path_factory.mktemp("ours"), jetstream=True).start()
    ref = Server(tmp_path_factory.mktemp("ref"), jetstream=True,
                 template=NATS_SERVER_BIN + " -a 127.0.0.1 -p {port} -m {http_port} -c {config}"
                 " -js -sd {store_dir}").start()
    yield ours, ref
    ours.stop()
    ref.stop()


def test_jetstream_replies_match_nats_server(js_pair):
    ours, ref = js_pair
    want = play(ref.port)
    got = play(ours.port)
    for (name, w), (_, g) in zip(want, got):
        assert g == w, f"step {name!r}: nats-server sent {w!r}"
