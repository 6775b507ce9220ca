"""Reloading TLS certificates with SIGHUP, as nats-server 2.14 does: the certificate, key and
CA files of the client port, the WebSocket port, the leaf port and the leaf remotes are read
again and serve every connection opened from then on, while connections already up keep
theirs; a reload whose files cannot be read or parsed is refused and the server keeps serving
with what it had. Every check runs first with nats-server 2.14, then with edgebus."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
from pathlib import Path

import pytest

from conftest import Server, free_port
from edgehelp import HOST, http_json, nats_connect, poll_sync, settle, take
from test_leaf import start
from test_leaf_tls import make_ca, make_cert

RELOADED, REFUSED = "Reloaded server configuration", "Failed to reload"


def verifies(port: int, ca: Path, info_first: bool) -> bool:
    """Whether a TLS handshake with the server on `port`, trusting only `ca`, succeeds (after
    the server's plaintext INFO when `info_first`)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    with socket.create_connection((HOST, port), timeout=5) as s:
        if info_first:
            got = b""
            while not got.endswith(b"\r\n"):
                chunk = s.recv(4096)
                assert chunk, f"closed before INFO: {got!r}"
                got += chunk
            assert got.startswith(b"INFO "), got
        try:
            with ctx.wrap_socket(s, server_hostname=HOST):
                return True
        except ssl.SSLCertVerificationError:
            return False


def reload(srv: Server) -> str:
    """Sends SIGHUP and waits for the server to log the outcome; returns what it logged."""
    before = srv.log_text()
    seen = before.count(RELOADED) + before.count(REFUSED)
    srv.signal(signal.SIGHUP)
    assert poll_sync(lambda: srv.log_text().count(RELOADED) + srv.log_text().count(REFUSED) > seen, timeout=10), \
        srv.log_text()[-2000:]
    return srv.log_text()[len(before):]


def client_ctx(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))


@pytest.mark.parametrize("kind", ["nats-server", "edgebus"])
async def test_a_reload_swaps_the_certificates_of_every_port(tmp_path, kind, token):
    d = tmp_path / "certs"
    d.mkdir()
    for ca in ("ca1", "ca2"):
        make_ca(d, ca)
        make_cert(d, ca, f"server-{ca}", "serverAuth")
    shutil.copy(d / "server-ca1.pem", d / "server.pem")
    shutil.copy(d / "server-ca1.key", d / "server.key")
    tls = f'tls {{ cert_file: "{d}/server.pem", key_file: "{d}/server.key" }}'
    ws_port, leaf_port = free_port(), free_port()
    srv = Server(tmp_path / "srv", config_text=f"""
{tls}
websocket {{ listen: "{HOST}:{ws_port}", {tls} }}
leafnodes {{ listen: "{HOST}:{leaf_port}", {tls} }}
""")
    start(kind, srv)
    ports = [(srv.port, True), (ws_port, False), (leaf_port, True)]
    old = new = None
    try:
        assert all(verifies(p, d / "ca1.pem", first) for p, first in ports)
        assert not any(verifies(p, d / "ca2.pem", first) for p, first in ports)
        old = await nats_connect(f"tls://{HOST}:{srv.port}", tls=client_ctx(d / "ca1.pem"))

        # the same files again: nothing changes
        assert RELOADED in reload(srv)
        assert all(verifies(p, d / "ca1.pem", first) for p, first in ports)

        # a certificate from CA-2 in the same files
        shutil.copy(d / "server-ca2.pem", d / "server.pem")
        shutil.copy(d / "server-ca2.key", d / "server.key")
        assert RELOADED in reload(srv)
        assert all(verifies(p, d / "ca2.pem", first) for p, first in ports)
        assert not any(verifies(p, d / "ca1.pem", first) for p, first in ports)
        new = await nats_connect(f"tls://{HOST}:{srv.port}", tls=client_ctx(d / "ca2.pem"))
        # the connection opened before the reload kept its TLS session
        sub = await old.subscribe(f"reload.{token}")
        await settle(old)  # one flush() is no round trip behind the SUB (edgehelp.settle)
        await new.publish(f"reload.{token}", b"across the reload")
        [msg] = await take(sub, 1)
        assert msg.data == b"across the reload"

        # a certificate file that does not parse: refused, CA-2's certificate still served
        (d / "server.pem").write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
        assert REFUSED in reload(srv)
        assert all(verifies(p, d / "ca2.pem", first) for p, first in ports)
        # an unreadable key file: refused the same way
        shutil.copy(d / "server-ca2.pem", d / "server.pem")
        (d / "server.key").unlink()
        assert REFUSED in reload(srv)
        assert all(verifies(p, d / "ca2.pem", first) for p, first in ports)
        await new.publish(f"reload.{token}", b"still serving")
        [msg] = await take(sub, 1)
        assert msg.data == b"still serving"
        assert srv.proc.poll() is None
    finally:
        for nc in (old, new):
            if nc:
                await nc.close()
        srv.stop()


def leafs(s: Server) -> int:
    return http_json(s.http_port, "/leafz")["leafnodes"]


@pytest.mark.parametrize("kind", ["nats-server", "edgebus"])
def test_a_reload_gives_a_leaf_remote_its_new_ca(tmp_path, kind):
    """A remote whose CA file does not hold the hub's CA gets no link; the CA file swapped
    and the leaf reloaded, its next dial verifies the hub and the link comes up."""
    d = tmp_path / "certs"
    d.mkdir()
    for ca in ("ca1", "ca2"):
        make_ca(d, ca)
    make_cert(d, "ca2", "server", "serverAuth")
    shutil.copy(d / "ca1.pem", d / "trusted.pem")
    leaf_port = free_port()
    hub = start("nats-server", Server(tmp_path / "hub", config_text=f"""
leafnodes {{ listen: "{HOST}:{leaf_port}", tls {{ cert_file: "{d}/server.pem", key_file: "{d}/server.key" }} }}
"""))
    spoke = Server(tmp_path / "spoke", config_text=f"""
leafnodes {{
  remotes: [ {{ url: "tls://{HOST}:{leaf_port}", tls {{ ca_file: "{d}/trusted.pem" }} }} ]
  reconnect: "250ms"
}}
""")
    try:
        start(kind, spoke)
        assert poll_sync(lambda: "certificate" in spoke.log_text() or "TLS handshake" in spoke.log_text(),
                         timeout=10), spoke.log_text()[-2000:]
        assert leafs(hub) == 0
        shutil.copy(d / "ca2.pem", d / "trusted.pem")
        assert RELOADED in reload(spoke)
        assert poll_sync(lambda: leafs(hub) == 1 and leafs(spoke) == 1, timeout=15), spoke.log_text()[-2000:]
    finally:
        spoke.stop()
        hub.stop()
