"""WebSocket transport: nats-py over ws:// and a hand-made upgrade."""

from __future__ import annotations

import json

from edgehelp import WsWire, nats_connect, settle, take, ws_accept_for


async def test_ws_client_and_tcp_client_exchange_messages(server, nc, token):
    ws = await nats_connect(server.ws_url)
    try:
        ws_sub = await ws.subscribe(f"ws.in.{token}")
        tcp_sub = await nc.subscribe(f"ws.out.{token}")
        await settle(ws, nc)
        # TCP -> WebSocket
        for i in range(20):
            await nc.publish(f"ws.in.{token}", f"t{i}".encode())
        await nc.flush()
        assert [m.data for m in await take(ws_sub, 20)] == [f"t{i}".encode() for i in range(20)]
        # WebSocket -> TCP, with headers and a large payload
        big = bytes(range(256)) * 2048  # 512 KiB
        await ws.publish(f"ws.out.{token}", big, headers={"X-From": "ws"})
        await ws.publish(f"ws.out.{token}", b"small")
        await ws.flush()
        got = await take(tcp_sub, 2, timeout=5)
        assert [m.data for m in got] == [big, b"small"]
        assert got[0].headers["X-From"] == "ws"
    finally:
        await ws.close()


async def test_request_reply_across_transports(server, nc, token):
    ws = await nats_connect(server.ws_url)
    try:
        async def ws_responder(msg):
            await msg.respond(b"ws:" + msg.data)

        async def tcp_responder(msg):
            await msg.respond(b"tcp:" + msg.data)

        await ws.subscribe(f"svc.ws.{token}", cb=ws_responder)
        await nc.subscribe(f"svc.tcp.{token}", cb=tcp_responder)
        await settle(ws, nc)
        assert (await nc.request(f"svc.ws.{token}", b"a", timeout=3)).data == b"ws:a"
        assert (await ws.request(f"svc.tcp.{token}", b"b", timeout=3)).data == b"tcp:b"
    finally:
        await ws.close()


def test_raw_websocket_upgrade_and_frames(server, token):
    ws = WsWire(server.ws_port)
    try:
        status, headers = ws.upgrade()
        assert status.startswith("HTTP/1.1 101"), status
        assert headers.get("upgrade", "").lower() == "websocket"
        assert headers.get("connection", "").lower() == "upgrade"
        assert headers.get("sec-websocket-accept") == ws_accept_for(ws.key)
        opcode, masked, payload = ws.frame()
        assert opcode == 0x2 and not masked  # binary, server frames are never masked
        assert payload.startswith(b"INFO ")
        info = json.loads(payload.split(b"\r\n", 1)[0][5:])
        assert info["max_payload"] == 1048576
        ws.stream = payload.split(b"\r\n", 1)[1]
        connect = json.dumps({"verbose": False, "pedantic": False, "headers": True, "protocol": 1}).encode()
        ws.send(b"CONNECT " + connect + b"\r\n")
        # an op split across two frames, several ops in one frame
        ws.send(f"SUB raw.{token} 5\r\nPUB raw.{token} rep 5\r\nhel".encode())
        ws.send(b"lo\r\nPING\r\n")
        got = ws.read_until(b"PONG\r\n")
        assert f"MSG raw.{token} 5 rep 5\r\nhello\r\n".encode() in got
        # text frames are accepted too
        ws.send(b"PING\r\n", opcode=0x1)
        assert ws.read_until(b"PONG\r\n").endswith(b"PONG\r\n")
    finally:
        ws.close()


async def test_raw_websocket_sees_tcp_publish(server, nc, token):
    ws = WsWire(server.ws_port)
    try:
        assert ws.upgrade()[0].startswith("HTTP/1.1 101")
        ws.read_until(b"\r\n")  # INFO
        ws.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n' + f"SUB tw.{token} 1\r\nPING\r\n".encode())
        ws.read_until(b"PONG\r\n")
        await nc.publish(f"tw.{token}", b"from-tcp")
        await nc.flush()
        assert ws.read_until(b"from-tcp\r\n").endswith(f"MSG tw.{token} 1 8\r\nfrom-tcp\r\n".encode())
    finally:
        ws.close()
