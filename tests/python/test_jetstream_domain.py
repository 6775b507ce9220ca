"""JetStream domains (`jetstream { domain: edge }`), as nats-server 2.14 serves them.

The API answers under `$JS.edge.API` as under `$JS.API` for the families nats-server maps
(INFO, STREAM, CONSUMER, DIRECT, …), KV and object-store puts come as
`$JS.edge.API.$KV.…`, the domain is named in INFO, acks, account and stream infos, and a
request outside the mapping (another domain, an unknown family) gets no responders.
Runs against nats-server too (EDGEBUS_SERVER_CMD=nats-server).
"""

from __future__ import annotations

import json

import nats
import pytest

from edgehelp import nats_connect

DOMAIN_CONFIG = "jetstream { domain: edge }\n"


@pytest.fixture
async def edge(make_server):
    srv = make_server(DOMAIN_CONFIG, jetstream=True)
    nc = await nats_connect(srv.url)
    yield nc
    await nc.close()


async def ask(nc, subject: str, body: dict | None = None) -> dict:
    msg = await nc.request(subject, json.dumps(body).encode() if body is not None else b"", timeout=5)
    return json.loads(msg.data)


async def test_info_and_account_name_the_domain(edge):
    assert edge._server_info.get("domain") == "edge"
    for subject in ("$JS.API.INFO", "$JS.edge.API.INFO"):
        assert (await ask(edge, subject))["domain"] == "edge"


async def test_a_client_of_the_domain_manages_and_uses_streams(edge):
    js = edge.jetstream(domain="edge")
    await js.add_stream(name="D", subjects=["d.>"], storage="file")
    ack = await js.publish("d.one", b"1")
    assert (ack.stream, ack.seq, ack.domain) == ("D", 1, "edge")
    info = await ask(edge, "$JS.edge.API.STREAM.INFO.D")
    assert (info["domain"], info["state"]["messages"]) == ("edge", 1)
    sub = await js.pull_subscribe("d.>", durable="w", stream="D")
    [msg] = await sub.fetch(1, timeout=5)
    assert msg.data == b"1"
    await msg.ack_sync()
    names = await ask(edge, "$JS.edge.API.STREAM.NAMES")
    assert names["streams"] == ["D"]


async def test_kv_through_the_domain_prefix(edge):
    js = edge.jetstream(domain="edge")
    kv = await js.create_key_value(bucket="dkv")
    rev = await kv.put("k", b"v1")
    assert rev == 1
    assert (await kv.get("k")).value == b"v1"
    # the put went to $JS.edge.API.$KV.dkv.k and was stored as $KV.dkv.k
    raw = await ask(edge, "$JS.API.STREAM.MSG.GET.KV_dkv", {"last_by_subj": "$KV.dkv.k"})
    assert raw["message"]["subject"] == "$KV.dkv.k"


@pytest.mark.parametrize("subject", ["$JS.other.API.INFO", "$JS.edge.API.BOGUS.X", "$JS.edge.API.INFO.X"])
async def test_outside_the_mapping_nobody_answers(edge, subject):
    with pytest.raises(nats.errors.NoRespondersError):
        await edge.request(subject, b"", timeout=5)


@pytest.mark.parametrize("name, words", [
    ('"a.b"', "invalid domain name: may not contain ., * or >"),
    ('"a b"', 'invalid domain name: derived "$JS.a b.API.>" is not a valid subject'),
])
def test_a_bad_domain_name_stops_the_start(make_server, name, words):
    srv = make_server(f"jetstream {{ domain: {name} }}\n", start=False, jetstream=True)
    proc = srv.spawn()
    assert proc.wait(timeout=30) != 0
    srv.stop()
    assert words in srv.log_text()
