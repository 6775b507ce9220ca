"""Reloading limits and log levels with SIGHUP, as nats-server 2.14 does: `max_payload` and
`max_control_line` apply at once to new connections and to those already up (nats-server
stores them into every client), `max_connections` closes clients over the new limit,
`ping_interval` / `ping_max` / `write_deadline` take effect for the ping and write loops, and
`debug` switches the log level; `max_pending` and `max_subscriptions` cannot change and the
reload is refused. Every check runs first with nats-server 2.14, then with edgebus."""

from __future__ import annotations

import socket

import pytest

from conftest import Server
from edgehelp import HOST, http_json, nats_connect, poll_sync
from test_leaf import start
from test_tls_reload import REFUSED, RELOADED, reload

KINDS = ["nats-server", "edgebus"]


class Raw:
    """A plain socket client that has sent CONNECT and seen its PONG."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.buf = b""
        self.until(b"\r\n")  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        self.until(b"PONG\r\n")

    def until(self, marker: bytes) -> bytes:
        """Everything received up to and including `marker`; '' if the server closed first."""
        while marker not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                return b""
            self.buf += chunk
        end = self.buf.index(marker) + len(marker)
        got, self.buf = self.buf[:end], self.buf[end:]
        return got

    def close(self) -> None:
        self.sock.close()


def server(tmp_path, text: str) -> Server:
    return Server(tmp_path / "srv", config_text=text)


def rewrite(srv: Server, text: str) -> str:
    srv.config_path.write_text(text)
    return reload(srv)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reloaded_max_payload_binds_new_and_existing_clients(tmp_path, kind):
    srv = server(tmp_path, "max_payload: 2048\n")
    start(kind, srv)
    old = Raw(srv.port)
    try:
        assert RELOADED in rewrite(srv, "max_payload: 512\n")
        # a new client is told the new limit
        nc = await nats_connect(srv.url)
        assert nc.max_payload == 512
        await nc.close()
        assert http_json(srv.http_port, "/varz")["max_payload"] == 512
        # one that connected under 2048 is held to 512 too
        old.sock.sendall(b"PUB reload.big 1000\r\n" + b"x" * 1000 + b"\r\nPING\r\n")
        got = old.until(b"\r\n")
        assert got.startswith(b"-ERR 'Maximum Payload Violation'"), got
    finally:
        old.close()
        srv.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_lower_max_connections_closes_clients_over_it(tmp_path, kind):
    srv = server(tmp_path, "max_connections: 10\n")
    start(kind, srv)
    clients = [Raw(srv.port) for _ in range(3)]
    try:
        assert RELOADED in rewrite(srv, "max_connections: 1\n")
        # two of the three (any two) are closed with nats-server's error, one stays: each
        # answers a PING or has been told why it is closed
        told = []
        for c in clients:
            c.sock.sendall(b"PING\r\n")
            told.append(c.until(b"\r\n"))
        errs = [t for t in told if t == b"-ERR 'maximum connections exceeded'\r\n"]
        assert len(errs) == 2 and told.count(b"PONG\r\n") == 1, told
        assert http_json(srv.http_port, "/varz")["max_connections"] == 1
    finally:
        for c in clients:
            c.close()
        srv.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reloaded_ping_interval_and_ping_max_end_a_silent_client(tmp_path, kind):
    # under the first config a client that never answers PING would be dropped after minutes
    srv = server(tmp_path, 'ping_interval: "2m"\nping_max: 2\n')
    start(kind, srv)
    try:
        assert RELOADED in rewrite(srv, 'ping_interval: "1s"\nping_max: 1\nwrite_deadline: "3s"\n')
        varz = http_json(srv.http_port, "/varz")
        assert (varz["ping_interval"], varz["ping_max"], varz["write_deadline"]) == (10**9, 1, 3 * 10**9)
        silent = Raw(srv.port)
        try:
            # it answers nothing: PINGs, then the stale connection error
            got = silent.until(b"Stale Connection'\r\n")
            assert b"-ERR 'Stale Connection'" in got, silent.buf
        finally:
            silent.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reload_turns_debug_logging_on(tmp_path, kind):
    srv = server(tmp_path, "debug: false\n")
    start(kind, srv)
    try:
        # a marker connection: created before the reload, logged only at debug level
        first = await nats_connect(srv.url)
        await first.flush()
        await first.close()
        assert "Client connection created" not in srv.log_text()
        assert RELOADED in rewrite(srv, "debug: true\n")
        nc = await nats_connect(srv.url)
        await nc.flush()
        assert poll_sync(lambda: "Client connection created" in srv.log_text(), timeout=10), srv.log_text()[-2000:]
        await nc.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", ["max_pending: 1MB", "max_subscriptions: 5"])
async def test_a_reload_of_max_pending_or_max_subscriptions_is_refused(tmp_path, kind, option):
    srv = server(tmp_path, "max_payload: 2048\n")
    start(kind, srv)
    try:
        said = rewrite(srv, f"max_payload: 512\n{option}\n")
        assert REFUSED in said and "config reload not supported for" in said, said
        name = option.split(":")[0]
        assert name.replace("_", "") in said.lower().replace("_", "").replace("maxsubs", "maxsubscriptions"), said
        # nothing of the refused reload applies, not even its reloadable part
        nc = await nats_connect(srv.url)
        assert nc.max_payload == 2048
        await nc.close()
    finally:
        srv.stop()
