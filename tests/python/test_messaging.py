"""Core messaging through real nats-py clients (and raw sockets for exact bytes)."""

from __future__ import annotations

import asyncio
import collections

import nats
import pytest

from edgehelp import Wire, expect_silence, nats_connect, poll, settle, take


async def test_publish_order_is_kept(nc, nc2, token):
    sub = await nc2.subscribe(f"order.{token}")
    await settle(nc2)
    for i in range(500):
        await nc.publish(f"order.{token}", str(i).encode())
    await nc.flush()
    got = await take(sub, 500, timeout=10)
    assert [m.data.decode() for m in got] == [str(i) for i in range(500)]
    assert all(m.subject == f"order.{token}" for m in got)


async def test_binary_and_empty_payloads(nc, nc2, token):
    sub = await nc2.subscribe(f"bin.{token}")
    await settle(nc2)
    blob = bytes(range(256)) * 40 + b"\r\nPUB x 1\r\n\x00"
    await nc.publish(f"bin.{token}", blob)
    await nc.publish(f"bin.{token}", b"")
    got = await take(sub, 2)
    assert [m.data for m in got] == [blob, b""]


async def test_star_wildcard_matches_exactly_one_token(nc, nc2, token):
    sub = await nc2.subscribe(f"w.{token}.*.end")
    await settle(nc2)
    for subj in (f"w.{token}.a.end", f"w.{token}.b.end",          # match
                 f"w.{token}.end", f"w.{token}.a.b.end",           # no: 0 or 2 tokens
                 f"w.{token}.a.endx", f"x.{token}.a.end"):         # no: other tokens
        await nc.publish(subj, subj.encode())
    await nc.flush()
    got = await take(sub, 2)
    assert sorted(m.subject for m in got) == [f"w.{token}.a.end", f"w.{token}.b.end"]
    await expect_silence(sub)


async def test_gt_wildcard_matches_one_or_more_trailing_tokens(nc, nc2, token):
    sub = await nc2.subscribe(f"g.{token}.>")
    await settle(nc2)
    for subj in (f"g.{token}.a", f"g.{token}.a.b.c",      # match
                 f"g.{token}", f"h.{token}.a", f"g.{token}x.a"):  # no
        await nc.publish(subj, b"x")
    await nc.flush()
    got = await take(sub, 2)
    assert sorted(m.subject for m in got) == [f"g.{token}.a", f"g.{token}.a.b.c"]
    await expect_silence(sub)


async def test_overlapping_subscriptions_each_get_a_copy(nc, nc2, token):
    literal = await nc2.subscribe(f"ov.{token}.x")
    star = await nc2.subscribe(f"ov.{token}.*")
    tail = await nc2.subscribe(f"ov.{token}.>")
    await settle(nc2)
    await nc.publish(f"ov.{token}.x", b"one")
    await nc.flush()
    for sub in (literal, star, tail):
        got = await take(sub, 1)
        assert [m.data for m in got] == [b"one"]
        await expect_silence(sub, 0.1)


async def test_unsubscribe_stops_delivery(server, token):
    # raw socket: nats-py would hide a server that keeps delivering (it drops
    # messages for sids it no longer knows)
    with Wire(server.port) as sub, Wire(server.port) as pub:
        sub.hello()
        sub.send(f"SUB un.{token} 1\r\nSUB un.{token} 2\r\n".encode())
        sub.roundtrip()
        pub.hello()
        pub.send(f"PUB un.{token} 1\r\na\r\n".encode())
        pub.roundtrip()
        first = sub.roundtrip()
        assert sorted(first.split(b"\r\n")[:-2:2]) == [f"MSG un.{token} 1 1".encode(), f"MSG un.{token} 2 1".encode()]
        sub.send(b"UNSUB 1\r\n")
        sub.roundtrip()
        pub.send(f"PUB un.{token} 1\r\nb\r\n".encode())
        pub.roundtrip()
        assert sub.roundtrip() == f"MSG un.{token} 2 1\r\nb\r\nPONG\r\n".encode()


async def test_queue_group_delivers_each_message_once_and_spreads(server, nc, token):
    members = [await nats_connect(server.url, name=f"q{i}") for i in range(3)]
    try:
        counts = collections.Counter()
        seen = collections.Counter()

        def handler_for(idx):
            async def handler(msg):
                counts[idx] += 1
                seen[msg.data] += 1
            return handler

        for i, m in enumerate(members):
            await m.subscribe(f"qg.{token}", queue="workers", cb=handler_for(i))
        await settle(*members)
        total = 300
        for i in range(total):
            await nc.publish(f"qg.{token}", str(i).encode())
        await nc.flush()
        await poll(lambda: sum(counts.values()) >= total, timeout=10)
        await asyncio.sleep(0.2)  # a duplicate, if any, would show up now
        assert sum(counts.values()) == total
        assert len(seen) == total and set(seen.values()) == {1}
        assert len(counts) == 3, f"queue members that got nothing: {counts}"
    finally:
        for m in members:
            await m.close()


async def test_two_queue_groups_and_plain_subscriber(server, nc, token):
    conns = [await nats_connect(server.url) for _ in range(5)]
    try:
        got = collections.defaultdict(list)

        def record(key):
            async def cb(msg):
                got[key].append(msg.data)
            return cb

        await conns[0].subscribe(f"qq.{token}", queue="a", cb=record("a"))
        await conns[1].subscribe(f"qq.{token}", queue="a", cb=record("a"))
        await conns[2].subscribe(f"qq.{token}", queue="b", cb=record("b"))
        await conns[3].subscribe(f"qq.{token}", queue="b", cb=record("b"))
        await conns[4].subscribe(f"qq.{token}", cb=record("plain"))
        await settle(*conns)
        for i in range(50):
            await nc.publish(f"qq.{token}", str(i).encode())
        await nc.flush()
        want = sorted(str(i).encode() for i in range(50))
        await poll(lambda: all(len(got[k]) >= 50 for k in ("a", "b", "plain")), timeout=10)
        await asyncio.sleep(0.2)
        for key in ("a", "b", "plain"):
            assert sorted(got[key]) == want, key
    finally:
        for c in conns:
            await c.close()


async def test_request_reply(nc, nc2, token):
    async def responder(msg):
        await nc2.publish(msg.reply, b"echo:" + msg.data)

    await nc2.subscribe(f"svc.{token}", cb=responder)
    await settle(nc2)
    for i in range(20):
        reply = await nc.request(f"svc.{token}", str(i).encode(), timeout=3)
        assert reply.data == f"echo:{i}".encode()


async def test_concurrent_requests_get_their_own_answers(nc, nc2, token):
    async def responder(msg):
        await msg.respond(msg.data[::-1])

    await nc2.subscribe(f"rev.{token}", cb=responder)
    await settle(nc2)
    words = [f"word-{i:03d}".encode() for i in range(40)]
    replies = await asyncio.gather(*(nc.request(f"rev.{token}", w, timeout=5) for w in words))
    assert [r.data for r in replies] == [w[::-1] for w in words]


async def test_scatter_gather(server, nc, token):
    responders = [await nats_connect(server.url) for _ in range(4)]
    try:
        for i, r in enumerate(responders):
            async def answer(msg, i=i, r=r):
                await r.publish(msg.reply, f"node-{i}".encode())
            await r.subscribe(f"sg.{token}", cb=answer)
        await settle(*responders)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await settle(nc)
        await nc.publish(f"sg.{token}", b"who?", reply=inbox)
        got = await take(sub, 4, timeout=5)
        assert sorted(m.data.decode() for m in got) == [f"node-{i}" for i in range(4)]
        await expect_silence(sub)
    finally:
        for r in responders:
            await r.close()


async def test_no_responders_fails_fast(nc, token):
    # without the server's 503 this would end in a TimeoutError after 8 s
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(f"nobody.{token}", b"hi", timeout=8)


async def test_no_responders_with_echo_off(server, token):
    """The page's link connects with echo off; nats-server still sends the 503."""
    quiet = await nats_connect(server.url, no_echo=True)
    try:
        with pytest.raises(nats.errors.NoRespondersError):
            await quiet.request(f"nobody.{token}", b"hi", timeout=8)
    finally:
        await quiet.close()


def test_no_responders_status_reaches_only_the_requester(server, token):
    """nats-server writes the 503 straight to the requester's own subscription on the reply
    subject: echo off does not stop it, a bystander subscribed to the reply subject does not
    see it, and it does not use up the subscription's auto-unsubscribe limit."""
    with Wire(server.port) as req, Wire(server.port) as other:
        req.hello(echo=False)
        other.hello()
        other.send(f"SUB _INBOX.{token}.> 9\r\n".encode())
        other.roundtrip()
        req.send(f"SUB _INBOX.{token}.* 7\r\nUNSUB 7 1\r\nPUB nobody.{token} _INBOX.{token}.r1 0\r\n\r\n".encode())
        status = f"NATS/1.0 503\r\nNats-Subject: nobody.{token}\r\n\r\n"
        assert req.roundtrip() == f"HMSG _INBOX.{token}.r1 7 {len(status)} {len(status)}\r\n{status}\r\nPONG\r\n".encode()
        # the bystander got no 503 (its PONG comes after anything routed to it before)
        other.send(f"PUB _INBOX.{token}.r2 2\r\nok\r\n".encode())
        assert other.roundtrip() == f"MSG _INBOX.{token}.r2 9 2\r\nok\r\nPONG\r\n".encode()
        # and UNSUB 7 1 is still waiting for its one message
        assert req.roundtrip() == f"MSG _INBOX.{token}.r2 7 2\r\nok\r\nPONG\r\n".encode()


async def test_no_responders_raw_status_message(server, token):
    with Wire(server.port) as w:
        w.hello()
        w.send(f"SUB _INBOX.{token}.* 7\r\nPUB nobody.{token} _INBOX.{token}.r1 2\r\nhi\r\n".encode())
        head = w.line()
        assert head.startswith(f"HMSG _INBOX.{token}.r1 7 ".encode()), head
        hdr_len, total_len = (int(x) for x in head.split()[-2:])
        assert hdr_len == total_len
        block = w.exactly(total_len + 2)
        assert block.startswith(b"NATS/1.0 503\r\n")
        assert f"Nats-Subject: nobody.{token}\r\n".encode() in block
        assert block.endswith(b"\r\n\r\n\r\n")


async def test_headers_round_trip_nats_py(nc, nc2, token):
    sub = await nc2.subscribe(f"hdr.{token}")
    await settle(nc2)
    await nc.publish(f"hdr.{token}", b"body", headers={"X-One": "1", "X-Text": "hello world"})
    got = await take(sub, 1)
    assert len(got) == 1
    assert got[0].data == b"body"
    assert got[0].headers["X-One"] == "1"
    assert got[0].headers["X-Text"] == "hello world"


async def test_hpub_becomes_byte_exact_hmsg(server, token):
    headers = b"NATS/1.0\r\nA: B\r\nMulti: 1\r\nMulti: 2\r\n\r\n"
    payload = b"hello"
    with Wire(server.port) as sub, Wire(server.port) as pub:
        sub.hello()
        sub.send(f"SUB hp.{token} 9\r\n".encode())
        sub.roundtrip()
        pub.hello()
        pub.send(f"HPUB hp.{token} rep.{token} {len(headers)} {len(headers) + len(payload)}\r\n".encode()
                 + headers + payload + b"\r\n")
        pub.roundtrip()
        expected = (f"HMSG hp.{token} 9 rep.{token} {len(headers)} {len(headers) + len(payload)}\r\n".encode()
                    + headers + payload + b"\r\n")
        assert sub.exactly(len(expected)) == expected


async def test_auto_unsubscribe_with_nats_py(nc, nc2, token):
    sub = await nc2.subscribe(f"au.{token}", max_msgs=3)
    await settle(nc2)
    for i in range(6):
        await nc.publish(f"au.{token}", str(i).encode())
    await nc.flush()
    # the three it takes arrive (however slow the machine), and nothing after them
    got = await take(sub, 3, timeout=10)
    assert [m.data for m in got] == [b"0", b"1", b"2"]
    assert await take(sub, 3, timeout=0.5) == []


async def test_raw_unsub_with_max(server, token):
    with Wire(server.port) as sub, Wire(server.port) as pub:
        sub.hello()
        sub.send(f"SUB au2.{token} 1\r\nUNSUB 1 2\r\n".encode())
        sub.roundtrip()
        pub.hello()
        for i in range(4):
            pub.send(f"PUB au2.{token} 1\r\n{i}\r\n".encode())
        pub.roundtrip()
        data = sub.roundtrip()
        assert data == f"MSG au2.{token} 1 1\r\n0\r\nMSG au2.{token} 1 1\r\n1\r\nPONG\r\n".encode()


async def test_unsub_max_holds_with_publishers_racing(server, token):
    """Four publishers on their own connections (so on both of the server's threads) race
    for a subscription limited to 300 messages: exactly 300 arrive, each once. The count is
    kept under the receiver's buffer lock; a lost or doubled count would show here."""
    wires = [Wire(server.port) for _ in range(5)]
    try:
        sub, pubs = wires[0], wires[1:]
        sub.hello()
        sub.send(f"SUB race.{token} 1\r\nUNSUB 1 300\r\n".encode())
        sub.roundtrip()
        for p in pubs:
            p.hello()
        batches = [b"".join(f"PUB race.{token} 4\r\n{i}{n:03}\r\n".encode() for n in range(200)) for i in range(4)]
        for p, batch in zip(pubs, batches):
            p.send(batch)
        for p in pubs:
            p.roundtrip()
        # every publish was routed before its publisher's PONG: the marker comes after them
        sub.send(b"PING\r\n")
        data = sub.until(b"PONG\r\n", timeout=10)
        bodies = [line for line in data.split(b"\r\n") if line and not line.startswith((b"MSG ", b"PONG"))]
        assert len(bodies) == 300 and len(set(bodies)) == 300
    finally:
        for w in wires:
            w.close()


async def test_subscription_drain_delivers_what_was_pending(nc, nc2, token):
    received = []

    async def slow(msg):
        await asyncio.sleep(0.005)
        received.append(msg.data)

    sub = await nc2.subscribe(f"sd.{token}", cb=slow)
    await settle(nc2)
    for i in range(50):
        await nc.publish(f"sd.{token}", str(i).encode())
    await nc.flush()
    # all 50 must be on nc2's socket before draining starts
    await poll(lambda: sub.delivered >= 50 or len(received) >= 50, timeout=5)
    await sub.drain()
    await poll(lambda: len(received) >= 50, timeout=5)
    assert received == [str(i).encode() for i in range(50)]
    # no longer subscribed: later messages are not delivered
    await nc.publish(f"sd.{token}", b"late")
    await nc.flush()
    await asyncio.sleep(0.2)
    assert b"late" not in received
    assert not nc2.is_closed


async def test_connection_drain_finishes_handlers_then_closes(server, nc, token):
    closed = asyncio.Event()

    async def on_closed():
        closed.set()

    drainer = await nats_connect(server.url, closed_cb=on_closed, drain_timeout=5)
    handled = []

    async def handler(msg):
        await asyncio.sleep(0.01)
        handled.append(msg.data)

    await drainer.subscribe(f"cd.{token}", cb=handler)
    await settle(drainer)
    for i in range(30):
        await nc.publish(f"cd.{token}", str(i).encode())
    await nc.flush()
    await poll(lambda: len(handled) >= 1, timeout=5)
    await drainer.drain()
    await asyncio.wait_for(closed.wait(), 10)
    assert handled == [str(i).encode() for i in range(30)]
    assert drainer.is_closed


async def test_echo_false_suppresses_own_messages(server, nc, token):
    quiet = await nats_connect(server.url, no_echo=True)
    try:
        own = await quiet.subscribe(f"echo.{token}")
        other = await nc.subscribe(f"echo.{token}")
        await settle(quiet, nc)
        await quiet.publish(f"echo.{token}", b"from-quiet")
        await quiet.flush()
        assert [m.data for m in await take(other, 1)] == [b"from-quiet"]
        await expect_silence(own)
        await nc.publish(f"echo.{token}", b"from-nc")
        await nc.flush()
        assert [m.data for m in await take(own, 1)] == [b"from-nc"]
    finally:
        await quiet.close()


async def test_publish_to_wildcard_subject_is_not_delivered_to_literals(server, token):
    with Wire(server.port) as sub, Wire(server.port) as pub:
        sub.hello()
        sub.send(f"SUB lit.{token}.a 1\r\nSUB lit.{token}.> 2\r\n".encode())
        sub.roundtrip()
        pub.hello()  # not pedantic: accepted silently
        pub.send(f"PUB lit.{token}.* 1\r\nx\r\n".encode())
        assert pub.roundtrip() == b"PONG\r\n"
        data = sub.roundtrip()
        assert data == f"MSG lit.{token}.* 2 1\r\nx\r\nPONG\r\n".encode()
