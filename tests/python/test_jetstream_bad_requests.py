"""`$JS.API` requests at the edges of validation, answered as nats-server 2.14 answers them.

Each request goes as raw protocol bytes to nats-server (JetStream on, fresh store) and to the
server under test; the replies are compared as in test_jetstream_differential.py (header block
byte for byte, JSON payloads as values with times masked). Refused requests must carry the
same code, error code and description; accepted ones the same reply.
"""

from __future__ import annotations

import json
import os

import pytest

from edgehelp import Wire
from test_jetstream_differential import comparable, js_pair, read_msg  # noqa: F401 (js_pair: a fixture)

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)


def j(v) -> bytes:
    return json.dumps(v).encode()


def stream(name: str, **extra) -> bytes:
    return j({"name": name, "subjects": [name.lower() + ".>"], "storage": "memory", **extra})


def consumer(name: str, **config) -> bytes:
    return j({"stream_name": "S", "config": {"name": name, **config}})


# (name, subject, body bytes)
STEPS = [
    ("the stream everything uses", "$JS.API.STREAM.CREATE.S", stream("S")),
    ("placement with a slash", "$JS.API.STREAM.CREATE.P1", stream("P1", placement={"cluster": "a/b"})),
    ("placement of a 1 MB string", "$JS.API.STREAM.CREATE.P2", stream("P2", placement={"cluster": "x" * 1_000_000})),
    ("placement tags with a slash", "$JS.API.STREAM.CREATE.P3", stream("P3", placement={"tags": ["a/b"]})),
    ("a name ending in DEL", "$JS.API.STREAM.CREATE.KV_\x7f", j({"name": "KV_\x7f", "storage": "memory"})),
    ("consumer create with a bogus action", "$JS.API.CONSUMER.CREATE.S.C2",
     j({"stream_name": "S", "action": "bogus", "config": {"name": "C2"}})),
    ("consumer create with action create", "$JS.API.CONSUMER.CREATE.S.C3",
     j({"stream_name": "S", "action": "create", "config": {"name": "C3"}})),
    ("consumer create with an empty action", "$JS.API.CONSUMER.CREATE.S.C4",
     j({"stream_name": "S", "action": "", "config": {"name": "C4"}})),
    ("max_batch of 200 million", "$JS.API.CONSUMER.CREATE.S.C5", consumer("C5", max_batch=200_000_000)),
    ("a negative max_batch", "$JS.API.CONSUMER.CREATE.S.C6", consumer("C6", max_batch=-5)),
    ("priority_policy as a list", "$JS.API.CONSUMER.CREATE.S.C7", consumer("C7", priority_policy=["pinned_client"])),
    ("priority_policy unknown", "$JS.API.CONSUMER.CREATE.S.C8", consumer("C8", priority_policy="bogus")),
    ("consumer create without stream_name", "$JS.API.CONSUMER.CREATE.S.C9", j({"config": {"name": "C9"}})),
    ("consumer create naming another stream", "$JS.API.CONSUMER.CREATE.S.C10",
     j({"stream_name": "T", "config": {"name": "C10"}})),
    ("ephemeral create without stream_name", "$JS.API.CONSUMER.CREATE.S", j({"config": {}})),
    ("durable create without stream_name", "$JS.API.CONSUMER.DURABLE.CREATE.S.C11",
     j({"config": {"durable_name": "C11"}})),
    ("names with 20,000 nested arrays", "$JS.API.STREAM.NAMES", b"[" * 20000 + b"]" * 20000),
    ("names with an object nesting 20,000 arrays", "$JS.API.STREAM.NAMES",
     b'{"offset":' + b"[" * 20000 + b"]" * 20000 + b"}"),
    ("names with a body of NUL bytes", "$JS.API.STREAM.NAMES", b"\x00" * 100),
    ("names with a body that is not JSON", "$JS.API.STREAM.NAMES", b"garbage"),
    ("names with a negative offset", "$JS.API.STREAM.NAMES", j({"offset": -5})),
    ("list with a negative offset", "$JS.API.STREAM.LIST", j({"offset": -5})),
    ("list with a body of NUL bytes", "$JS.API.STREAM.LIST", b"\x00\x00"),
    ("consumer names with a negative offset", "$JS.API.CONSUMER.NAMES.S", j({"offset": -1})),
]


def play(port: int) -> list[tuple[str, list]]:
    out = []
    with Wire(port) as w:
        w.hello()
        w.send(b"SUB _INBOX.b.> 1\r\n")
        w.roundtrip()
        for i, (name, subject, body) in enumerate(STEPS):
            w.send(f"PUB {subject} _INBOX.b.{i} {len(body)}\r\n".encode() + body + b"\r\n")
            hdr, payload = read_msg(w)
            out.append((name, comparable(hdr, payload)))
    return out


def test_edge_requests_answered_as_nats_server(js_pair):
    ours, ref = js_pair
    want = play(ref.port)
    got = play(ours.port)
    mismatches = [(name, w, g) for (name, w), (_, g) in zip(want, got) if g != w]
    assert not mismatches, "\n\n".join(f"{n}:\n  nats-server {str(w)[:600]}\n  ours        {str(g)[:600]}"
                                       for n, w, g in mismatches)
