"""TLS on the client port (`tls { … }` and the `--tls*` flags), as nats-server 2.14 does it.

The certificates are made here, per test session, with `cryptography`: a CA, a server
certificate for 127.0.0.1 signed by it, a client certificate signed by it, and a client
certificate from an unrelated CA. Nothing secret is committed.

Every test runs against nats-server too (EDGEBUS_SERVER_CMD=nats-server), so a failure
against edgebus means edgebus differs."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import bin_argv, greets_with_info
from edgehelp import HOST, WsWire, http_json, nats_connect, settle, take


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, usage=None, ip: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(_name(subject)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                         x509.DNSName("localhost")]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert, key=None) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Path:
    """ca.pem; server.pem/.key (127.0.0.1, from ca); client.pem/.key (from ca);
    rogue.pem/.key (a client certificate from a CA the server does not know)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, rogue_ca_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("edgebus test CA", ca_key, _name("edgebus test CA"), ca_key, ca=True)
    _write(d / "ca", ca)
    for name, usage, issuer, issuer_key, ip in [
        ("server", ExtendedKeyUsageOID.SERVER_AUTH, ca, ca_key, True),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, ca, ca_key, False),
        ("rogue", ExtendedKeyUsageOID.CLIENT_AUTH, None, rogue_ca_key, False),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer_name = issuer.subject if issuer is not None else _name("rogue CA")
        _write(d / name, _cert(name, key, issuer_name, issuer_key, ca=False, usage=usage, ip=ip), key)
    return d


def tls_block(pki: Path, extra: str = "") -> str:
    return f'tls {{\n  cert_file: "{pki}/server.pem"\n  key_file: "{pki}/server.key"\n{extra}}}\n'


def client_ctx(pki: Path, cert: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


def read_info(sock: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        assert chunk, f"closed before INFO: {data!r}"
        data += chunk
    assert data.startswith(b"INFO "), data
    return json.loads(data[5:])


def closed_without_answer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Reads until the server closes; returns what it sent first."""
    sock.settimeout(timeout)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except ConnectionResetError:
        pass
    return got


async def pub_sub_roundtrip(nc, token: str) -> None:
    sub = await nc.subscribe(f"tls.{token}")
    await nc.flush()
    await nc.publish(f"tls.{token}", b"over tls")
    [msg] = await take(sub, 1)
    assert msg.data == b"over tls"


async def test_tls_connect_pub_sub_and_info(make_server, pki, token):
    srv = make_server(tls_block(pki))
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        info = read_info(s)  # plaintext INFO first, the client upgrades after it
    assert info["tls_required"] is True
    assert "tls_verify" not in info
    varz = http_json(srv.http_port, "/varz")
    assert varz["tls_required"] is True and "tls_verify" not in varz and varz["tls_timeout"] == 2
    nc = await nats_connect(f"tls://{HOST}:{srv.port}", tls=client_ctx(pki))
    try:
        await pub_sub_roundtrip(nc, token)
    finally:
        await nc.close()


def test_websocket_info_on_a_server_with_tls_on_the_client_port(make_server, pki):
    """nats-server's WebSocket INFO says tls_required only for wss://, but carries the
    client port's tls_verify."""
    srv = make_server(tls_block(pki, f'  ca_file: "{pki}/ca.pem"\n  verify: true\n'))
    w = WsWire(srv.ws_port)
    try:
        status, _ = w.upgrade()
        assert status.startswith("HTTP/1.1 101"), status
        line = w.read_until(b"\r\n")
    finally:
        w.close()
    info = json.loads(line[5:])
    assert "tls_required" not in info and "tls_available" not in info and info["tls_verify"] is True


def test_plaintext_client_is_refused_without_an_answer(make_server, pki):
    srv = make_server(tls_block(pki))
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        read_info(s)
        s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert closed_without_answer(s) == b""


def test_handshake_times_out(make_server, pki):
    srv = make_server(tls_block(pki, "  timeout: 0.5\n"))
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        read_info(s)
        s.sendall(b"\x16\x03\x01")  # the start of a TLS record, and then nothing
        assert closed_without_answer(s, timeout=10) == b""


async def test_verify_requires_a_client_certificate_from_the_ca(make_server, pki, token):
    srv = make_server(tls_block(pki, f'  ca_file: "{pki}/ca.pem"\n  verify: true\n'))
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        info = read_info(s)
    assert info["tls_required"] is True and info["tls_verify"] is True
    varz = http_json(srv.http_port, "/varz")
    assert varz["tls_required"] is True and varz["tls_verify"] is True
    nc = await nats_connect(f"tls://{HOST}:{srv.port}", tls=client_ctx(pki, "client"))
    try:
        await pub_sub_roundtrip(nc, token)
    finally:
        await nc.close()
    for cert in (None, "rogue"):
        with pytest.raises(Exception):
            nc = await nats_connect(f"tls://{HOST}:{srv.port}", tls=client_ctx(pki, cert), connect_timeout=3)
            # TLS 1.3: the server's refusal of the certificate can arrive after the
            # client's handshake returned; the first round trip then fails
            try:
                await nc.flush(timeout=3)
            finally:
                await nc.close()


async def test_handshake_first(make_server, pki, token):
    srv = make_server(tls_block(pki, "  handshake_first: true\n"), start=False)
    srv.spawn()
    deadline = time.monotonic() + 20
    ctx = client_ctx(pki)
    while True:  # the server sends nothing before the handshake: wait for the port
        try:
            raw = socket.create_connection((HOST, srv.port), timeout=5)
            break
        except OSError:
            assert time.monotonic() < deadline and srv.proc.poll() is None, srv.log_text()[-2000:]
            time.sleep(0.05)
    with ctx.wrap_socket(raw, server_hostname=HOST) as s:  # handshake before any INFO
        info = read_info(s)
    assert info["tls_required"] is True
    nc = await nats_connect(f"tls://{HOST}:{srv.port}", tls=ctx, tls_handshake_first=True)
    try:
        await pub_sub_roundtrip(nc, token)
    finally:
        await nc.close()


@pytest.mark.parametrize("missing", ["cert_file", "key_file", "ca_file"])
def test_missing_file_refuses_to_start_naming_it(make_server, pki, missing):
    files = {"cert_file": f"{pki}/server.pem", "key_file": f"{pki}/server.key", "ca_file": f"{pki}/ca.pem"}
    files[missing] = f"{pki}/no-such-{missing}.pem"
    body = "".join(f'  {k}: "{v}"\n' for k, v in files.items()) + "  verify: true\n"
    srv = make_server(f"tls {{\n{body}}}\n", start=False)
    rc = srv.spawn().wait(timeout=15)
    srv.stop()
    assert rc != 0
    assert f"no-such-{missing}.pem" in srv.log_text(), srv.log_text()[-1500:]


def test_tls_flags(make_server, pki):
    srv = make_server(start=False)
    argv = srv.argv() + ["--tls", "--tlscert", f"{pki}/server.pem", "--tlskey", f"{pki}/server.key",
                         "--tlsverify", "--tlscacert", f"{pki}/ca.pem"]
    srv.spawn(argv)
    deadline = time.monotonic() + 20
    while not greets_with_info(srv.port):
        assert time.monotonic() < deadline and srv.proc.poll() is None, srv.log_text()[-2000:]
        time.sleep(0.03)
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        info = read_info(s)
    assert info["tls_required"] is True and info["tls_verify"] is True
    with socket.create_connection((HOST, srv.port), timeout=5) as raw:
        read_info(raw)
        with client_ctx(pki, "client").wrap_socket(raw, server_hostname=HOST) as s:
            s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
            got = b""
            while b"PONG\r\n" not in got:
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk


def test_tls_flag_without_certificate_refuses(make_server):
    srv = make_server(start=False)
    rc = srv.spawn(bin_argv() + ["-p", str(srv.port), "--tls"]).wait(timeout=15)
    srv.stop()
    assert rc != 0
    assert "TLS Server certificate must be present and valid" in srv.log_text(), srv.log_text()[-1000:]


# ------------------------------------------------------------------ wss:// ---

def wss_server(make_server, pki: Path, tls_body: str | None = None, start: bool = True):
    """A server whose WebSocket listener has `tls { … }` (and no `no_tls`)."""
    srv = make_server(start=False)
    body = tls_body if tls_body is not None else f'cert_file: "{pki}/server.pem"\n    key_file: "{pki}/server.key"'
    srv.config_path.write_text(
        f'websocket {{\n  host: "{HOST}"\n  port: {srv.ws_port}\n  tls {{\n    {body}\n  }}\n}}\n')
    if start:
        srv.start()
    return srv


async def test_wss_pub_sub_with_a_tcp_client(make_server, pki, token):
    srv = wss_server(make_server, pki)
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        assert "tls_required" not in read_info(s)  # the client port stays plaintext
    raw = socket.create_connection((HOST, srv.ws_port), timeout=5)
    with client_ctx(pki).wrap_socket(raw, server_hostname=HOST) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        got = b""
        while b"INFO " not in got or not got.endswith(b"\r\n"):
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
    assert got.startswith(b"HTTP/1.1 101"), got
    info = json.loads(got[got.index(b"INFO ") + 5:])  # one unmasked frame: header, then the line
    assert info["tls_required"] is True and info["tls_available"] is True
    ws = await nats_connect(f"wss://{HOST}:{srv.ws_port}", tls=client_ctx(pki))
    tcp = await nats_connect(srv.url)
    try:
        sub = await tcp.subscribe(f"wss.{token}")
        await settle(tcp)  # one flush() is no round trip behind the SUB (edgehelp.settle)
        await ws.publish(f"wss.{token}", b"from a browser")
        [msg] = await take(sub, 1)
        assert msg.data == b"from a browser"
        back = await ws.subscribe(f"back.{token}")
        await settle(ws)
        await tcp.publish(f"back.{token}", b"to a browser")
        [msg] = await take(back, 1)
        assert msg.data == b"to a browser"
    finally:
        await ws.close()
        await tcp.close()


def test_plain_http_on_the_wss_port_gets_go_s_400(make_server, pki):
    srv = wss_server(make_server, pki)
    with socket.create_connection((HOST, srv.ws_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        got = closed_without_answer(s)
    assert got == b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n", got


def test_wss_with_a_missing_certificate_refuses_to_start(make_server, pki):
    srv = wss_server(make_server, pki, f'cert_file: "{pki}/no-such-ws-cert.pem"\n    key_file: "{pki}/server.key"',
                     start=False)
    rc = srv.spawn().wait(timeout=15)
    srv.stop()
    assert rc != 0
    assert "no-such-ws-cert.pem" in srv.log_text(), srv.log_text()[-1500:]
