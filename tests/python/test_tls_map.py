"""`tls { verify_and_map: true }` as nats-server 2.14 does it (`checkClientTLSCertSubject`):
the verified client certificate names the user, by an email address or DNS name among its
subject alternative names, or by its subject as a distinguished name (in any attribute order),
or the subject as Go writes it (`CN=…,O=…`). A certificate naming no configured user is an
Authorization Violation, whatever the CONNECT says; the mapped user's permissions apply.
Certificates are made here with `cryptography`."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgehelp import HOST

AUTH_VIOLATION = b"-ERR 'Authorization Violation'\r\n"


def _cert(subject: x509.Name, key, issuer: x509.Name, issuer_key, *, ca=False, sans=(), server=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _name(**attrs) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "C": NameOID.COUNTRY_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs.items()])


# client name -> (subject, subject alternative names)
CLIENTS = {
    "email": (_name(CN="mailer"), [x509.RFC822Name("alice@users.example")]),
    "dns": (_name(CN="dnsclient"), [x509.DNSName("svc.users.example")]),
    "dn": (_name(C="US", O="Acme", CN="app"), []),
    "nobody": (_name(CN="stranger"), [x509.DNSName("stranger.example")]),
    "pw": (_name(CN="pw"), [x509.DNSName("pw.users.example")]),
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("mappki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(CN="map test CA")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    import ipaddress
    for name, (subject, sans) in {"server": (_name(CN="server"), [x509.IPAddress(ipaddress.ip_address(HOST))]),
                                  **CLIENTS}.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(subject, key, ca_name, ca_key, sans=sans, server=name == "server")
        (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return d


def config(pki: Path) -> str:
    return f"""
tls {{
  cert_file: "{pki}/server.pem"
  key_file: "{pki}/server.key"
  ca_file: "{pki}/ca.pem"
  verify_and_map: true
}}
authorization {{
  users: [
    {{ user: "alice@users.example", permissions: {{ publish: "mail.>", subscribe: "mail.>" }} }}
    {{ user: "svc.users.example" }}
    {{ user: "pw.users.example", password: s3cret }}
    {{ user: "O=Acme, CN=app, C=US", permissions: {{ publish: "app.>", subscribe: "app.>" }} }}
  ]
}}
"""


@pytest.fixture(scope="module")
def map_server(pki, tmp_path_factory):
    from conftest import Server
    srv = Server(tmp_path_factory.mktemp("mapsrv"), extra_config=config(pki))
    srv.start()
    yield srv
    srv.stop()


def tls_wire(port: int, pki: Path, client: str) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / f"{client}.pem"), str(pki / f"{client}.key"))
    raw = socket.create_connection((HOST, port), timeout=5)
    raw.recv(4096)  # INFO before the handshake, as nats-server sends it
    return ctx.wrap_socket(raw, server_hostname=HOST)


def exchange(sock: ssl.SSLSocket, data: bytes, until: bytes = b"PONG\r\n") -> bytes:
    sock.sendall(data)
    got = b""
    while until not in got and AUTH_VIOLATION not in got:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def connect(sock, **fields) -> bytes:
    return exchange(sock, b"CONNECT " + json.dumps({"verbose": False, **fields}).encode() + b"\r\nPING\r\n")


@pytest.mark.parametrize("client,allowed,denied", [
    ("email", "mail.x", "app.x"),
    ("dn", "app.x", "mail.x"),
])
def test_certificate_names_the_user_and_its_permissions(map_server, pki, client, allowed, denied):
    with tls_wire(map_server.port, pki, client) as s:
        assert connect(s) == b"PONG\r\n"
        got = exchange(s, f"SUB {allowed} 1\r\nPUB {allowed} 1\r\nx\r\nPUB {denied} 1\r\ny\r\nPING\r\n".encode())
        assert got == (f"MSG {allowed} 1 1\r\nx\r\n"
                       f"-ERR 'Permissions Violation for Publish to \"{denied}\"'\r\nPONG\r\n").encode()


def test_dns_name_maps_and_a_user_in_connect_changes_nothing(map_server, pki):
    with tls_wire(map_server.port, pki, "dns") as s:
        # the certificate's user wins over the CONNECT's (nats-server logs a warning)
        assert connect(s, user="alice@users.example") == b"PONG\r\n"
        assert exchange(s, b"PUB any.thing 1\r\nz\r\nPING\r\n") == b"PONG\r\n"


def test_mapped_user_password_is_still_compared(map_server, pki):
    # nats-server compares the CONNECT's password with the mapped user's (none configured)
    with tls_wire(map_server.port, pki, "dns") as s:
        assert connect(s, **{"pass": "anything"}) == AUTH_VIOLATION
    with tls_wire(map_server.port, pki, "pw") as s:
        assert connect(s) == AUTH_VIOLATION
    with tls_wire(map_server.port, pki, "pw") as s:
        assert connect(s, **{"pass": "s3cret"}) == b"PONG\r\n"


def test_certificate_naming_nobody_is_refused(map_server, pki):
    with tls_wire(map_server.port, pki, "nobody") as s:
        assert connect(s, user="svc.users.example") == AUTH_VIOLATION


def test_info_says_tls_verify(map_server):
    with socket.create_connection((HOST, map_server.port), timeout=5) as raw:
        info = json.loads(raw.recv(4096)[5:])
        assert info["tls_required"] is True and info["tls_verify"] is True and info["auth_required"] is True

