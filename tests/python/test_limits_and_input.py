"""Limits (slow consumers, max payload) and hostile or broken protocol input."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import nats
import pytest

from edgehelp import Wire, http_json, nats_connect, poll, settle, take


# ---------------------------------------------------------- slow consumer ---

async def test_slow_consumer_is_cut_off_while_others_keep_receiving(server, nc, token):
    before = http_json(server.http_port, "/varz").get("slow_consumers", 0)
    subject = f"slow.{token}"
    fast = await nats_connect(server.url)
    try:
        fast_sub = await fast.subscribe(subject, pending_bytes_limit=256 * 1024 * 1024,
                                        pending_msgs_limit=100_000)
        await settle(fast)
        with Wire(server.port, rcvbuf=4096) as stalled:
            stalled.hello()
            stalled.send(f"SUB {subject} 1\r\n".encode())
            stalled.roundtrip()
            # from here on `stalled` never reads again
            payload = b"z" * 65536
            count = 192  # 12 MiB: far past max_pending (4MB) and any socket buffers
            for i in range(count):
                await nc.publish(subject, payload)
                if i % 32 == 31:
                    await nc.flush()
            await nc.flush()
            got = await take(fast_sub, count, timeout=20)
            assert len(got) == count, "the healthy subscriber lost messages"
            assert stalled.wait_closed(timeout=15), "the stalled subscriber was never disconnected"
        varz = await poll(lambda: (v := http_json(server.http_port, "/varz"))["slow_consumers"] > before and v,
                          timeout=5)
        assert varz and varz["slow_consumers"] >= 1
    finally:
        await fast.close()


# ------------------------------------------------------------ max payload ---

async def test_default_max_payload_is_advertised_and_enforced_by_client(server, nc, token):
    with Wire(server.port) as w:
        assert w.info()["max_payload"] == 1048576
    assert nc.max_payload == 1048576
    with pytest.raises(nats.errors.MaxPayloadError):
        await nc.publish(f"big.{token}", b"x" * (1048576 + 1))


async def test_max_payload_exactly_at_limit_is_delivered(nc, nc2, token):
    sub = await nc2.subscribe(f"limit.{token}")
    await settle(nc2)
    body = bytes(random.Random(7).randbytes(1048576))
    await nc.publish(f"limit.{token}", body)
    got = await take(sub, 1, timeout=5)
    assert len(got) == 1 and got[0].data == body


async def test_raw_pub_over_max_payload_is_fatal(server, token):
    with Wire(server.port) as w:
        w.hello()
        w.send(f"PUB big.{token} 1048577\r\n".encode())
        assert w.line() == b"-ERR 'Maximum Payload Violation'"
        assert w.wait_closed()


async def test_configured_max_payload_is_advertised(make_server, token):
    srv = make_server("max_payload: 1KB\n")
    with Wire(srv.port) as w:
        assert w.info()["max_payload"] == 1024
    with Wire(srv.port) as w:
        w.hello()
        w.send(f"PUB p.{token} 1025\r\n".encode())
        assert w.line() == b"-ERR 'Maximum Payload Violation'"
        assert w.wait_closed()
    nc = await nats_connect(srv.url)
    try:
        assert nc.max_payload == 1024
        with pytest.raises(nats.errors.MaxPayloadError):
            await nc.publish(f"p.{token}", b"x" * 1025)
    finally:
        await nc.close()


# ------------------------------------------------------- bad wire input ---

def test_unknown_verb_is_fatal(server):
    with Wire(server.port) as w:
        w.hello()
        w.send(b"FROB foo\r\n")
        assert w.line() == b"-ERR 'Unknown Protocol Operation'"
        assert w.wait_closed()


def test_payload_without_crlf_is_fatal(server, token):
    with Wire(server.port) as w:
        w.hello()
        w.send(f"PUB t.{token} 2\r\nhello\r\n".encode())
        assert w.line() == b"-ERR 'Unknown Protocol Operation'"
        assert w.wait_closed()


@pytest.mark.parametrize("bad", [b"PUB foo\r\n", b"PUB foo abc\r\n", b"SUB foo\r\n"])
def test_malformed_arguments_close_silently(server, bad):
    with Wire(server.port) as w:
        w.hello()
        w.send(bad)
        assert w.wait_closed()
        assert b"-ERR" not in w.pending and b"MSG" not in w.pending


def test_control_line_over_limit_is_fatal(server):
    with Wire(server.port) as w:
        w.hello()
        w.send(b"PUB " + b"a" * 5000 + b" 1\r\nx\r\n")
        assert w.line() == b"-ERR 'maximum control line exceeded'"
        assert w.wait_closed()


@pytest.mark.parametrize("subject", ["foo..bar", ".foo", "foo.", "foo.>.bar"])
def test_invalid_sub_subject_is_not_fatal(server, subject, token):
    with Wire(server.port) as w:
        w.hello()
        w.send(f"SUB {subject} 1\r\n".encode())
        assert w.line() == b"-ERR 'Invalid Subject'"
        # the connection still works
        w.send(f"SUB ok.{token} 2\r\nPUB ok.{token} 2\r\nhi\r\n".encode())
        assert w.roundtrip() == f"MSG ok.{token} 2 2\r\nhi\r\nPONG\r\n".encode()


def test_random_garbage_never_takes_the_server_down(make_server, token):
    srv = make_server()
    rng = random.Random(20240611)
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))) for _ in range(40)]
    # garbage that starts like real verbs, to get deeper into the parser
    for verb in (b"PUB ", b"HPUB ", b"SUB ", b"UNSUB ", b"CONNECT ", b"MSG ", b"INFO "):
        samples.append(verb + bytes(rng.randrange(256) for _ in range(500)) + b"\r\n")
    samples.append(b"CONNECT {\"verbose\":" + b"[" * 3000 + b"\r\n")
    samples.append(b"HPUB foo 100 10\r\n" + b"x" * 10 + b"\r\n")
    samples.append(b"PUB foo -5\r\n")
    samples.append(b"PUB foo 99999999999999999999999\r\n")
    bystander = Wire(srv.port)  # connected all along
    bystander.hello()
    bystander.send(f"SUB during.{token} 1\r\n".encode())
    bystander.roundtrip()
    for blob in samples:
        with Wire(srv.port) as w:
            w.info()
            try:
                w.send(blob)
                w.wait_closed(timeout=0.3)
            except OSError:
                pass  # the server may reset us mid-write: that is fine
        assert srv.proc.poll() is None, f"server died after {blob[:60]!r}"
    # the connection that was there all along still works
    with bystander:
        bystander.send(f"PUB during.{token} 2\r\nok\r\n".encode())
        assert bystander.roundtrip() == f"MSG during.{token} 1 2\r\nok\r\nPONG\r\n".encode()
    # and new connections work too
    with Wire(srv.port) as a, Wire(srv.port) as b:
        a.hello()
        a.send(f"SUB after.{token} 1\r\n".encode())
        a.roundtrip()
        b.hello()
        b.send(f"PUB after.{token} 2\r\nok\r\n".encode())
        b.roundtrip()
        assert a.roundtrip() == f"MSG after.{token} 1 2\r\nok\r\nPONG\r\n".encode()


def test_subject_of_20000_tokens_subscribes_matches_and_unsubscribes(make_server, token):
    """nats-server accepts a 20,000-token subject when max_control_line allows the line;
    subscribing, delivering, unsubscribing and a stream on such a subject (created, then
    deleted) must neither kill the server nor log a panic."""
    srv = make_server(extra_config="max_control_line: 64KB\n", jetstream=True)
    deep = ".".join(["t"] * 19_999 + [token])
    with Wire(srv.port) as w:
        w.hello()
        w.send(f"SUB {deep} 1\r\nPUB {deep} 2\r\nhi\r\n".encode())
        assert w.roundtrip() == f"MSG {deep} 1 2\r\nhi\r\nPONG\r\n".encode()
        w.send(b"UNSUB 1\r\n")
        # a marker on a second subscription shows the first is gone
        w.send(f"SUB {deep} 2\r\nUNSUB 2\r\nSUB m.{token} 3\r\nPUB {deep} 2\r\nno\r\nPUB m.{token} 2\r\nok\r\n".encode())
        assert w.roundtrip() == f"MSG m.{token} 3 2\r\nok\r\nPONG\r\n".encode()
        body = json.dumps({"name": f"DEEP_{token}", "subjects": [deep]}).encode()
        w.send(f"SUB r.{token} 4\r\nPUB $JS.API.STREAM.CREATE.DEEP_{token} r.{token} {len(body)}\r\n".encode() + body + b"\r\n")
        created = _msg_body(w)
        assert b'"error"' not in created, created[:300]
        w.send(f"PUB $JS.API.STREAM.DELETE.DEEP_{token} r.{token} 0\r\n\r\n".encode())
        assert b'"success":true' in _msg_body(w)
        assert w.roundtrip().endswith(b"PONG\r\n")
    assert srv.proc.poll() is None, "server died"
    assert "panicked" not in srv.log_text() and "overflow" not in srv.log_text(), srv.log_text()[-2000:]


def _msg_body(w: Wire) -> bytes:
    """The payload of the next MSG line on `w`."""
    head = w.line(timeout=10)
    assert head.startswith(b"MSG "), head[:200]
    size = int(head.rsplit(b" ", 1)[1])
    return w.exactly(size + 2, timeout=10)[:-2]


# ---------------------------------------------------------- listen backlog ---

def _listen_backlog(port: int) -> int | None:
    """The accept-queue size of the socket listening on `port`, as `ss` reports it (its
    Send-Q column), or None when nothing listens there."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "LISTEN":
            return int(fields[2])
    return None


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the listen backlog")
def test_client_port_listens_with_nats_servers_backlog(server):
    # With the 128 of a default listener, hundreds of clients connecting at once (a fleet
    # reconnecting) overflow the accept queue: their handshakes complete on the client side
    # and the INFO comes seconds later. nats-server asks for 4096; the kernel caps it.
    somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
    assert _listen_backlog(server.port) == min(4096, somaxconn)
