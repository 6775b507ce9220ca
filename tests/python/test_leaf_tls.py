"""TLS on leaf links, both ways: a leaf dialling a nats-server 2.14 hub whose leaf port
requires TLS (with a client certificate, and TLS-first), a leaf below edgebus's TLS leaf port,
and the settings that cannot be honoured. Certificates are made here with the `openssl` CLI: a
CA, a server certificate for 127.0.0.1 and a client certificate, and a second CA nobody trusts.
Every check runs first with nats-server 2.14 in edgebus's place, then with edgebus."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from conftest import Server, free_port
from edgehelp import HOST, http_json, poll_sync
from test_leaf import crosses_both_ways, start


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def make_cert(d: Path, ca: str, name: str, usage: str) -> None:
    (d / f"{name}.ext").write_text(f"subjectAltName=IP:{HOST}\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "serverAuth")
    make_cert(d, "ca", "client", "clientAuth")
    make_ca(d, "stranger")
    return d


def port_tls(certs: Path, first: bool = False) -> str:
    """A leaf port's `tls` block: our certificate, client certificates required."""
    return (f'tls {{ cert_file: "{certs}/server.pem", key_file: "{certs}/server.key", '
            f'ca_file: "{certs}/ca.pem", verify: true{", handshake_first: true" if first else ""} }}')


def remote_tls(certs: Path, ca: str = "ca", first: bool = False) -> str:
    """A remote's `tls` block: the CA that must have signed the hub, and our certificate."""
    return (f'tls {{ ca_file: "{certs}/{ca}.pem", cert_file: "{certs}/client.pem", '
            f'key_file: "{certs}/client.key"{", handshake_first: true" if first else ""} }}')


def top_server(root: Path, kind: str, certs: Path, first: bool = False) -> tuple[Server, int]:
    leaf_port = free_port()
    s = Server(root / "top", config_text=f"""
server_name: top
leafnodes {{ listen: "{HOST}:{leaf_port}", {port_tls(certs, first)} }}
""")
    return start(kind, s), leaf_port


def spoke_server(root: Path, kind: str, leaf_port: int, remote: str) -> Server:
    s = Server(root / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "tls://{HOST}:{leaf_port}", {remote} }} ], reconnect: "250ms" }}
""")
    return start(kind, s)


def leafs(s: Server) -> int:
    return http_json(s.http_port, "/leafz")["leafnodes"]


PAIRS = [("nats-server", "nats-server"), ("nats-server", "edgebus"), ("edgebus", "nats-server"),
         ("edgebus", "edgebus")]


@pytest.mark.parametrize("first", [False, True], ids=["info-then-tls", "tls-first"])
@pytest.mark.parametrize("top_kind,spoke_kind", PAIRS, ids=[f"{s}-below-{t}" for t, s in PAIRS])
async def test_a_leaf_link_over_tls_with_client_certificates(tmp_path, certs, top_kind, spoke_kind, first):
    top, leaf_port = top_server(tmp_path, top_kind, certs, first)
    spoke = None
    try:
        spoke = spoke_server(tmp_path, spoke_kind, leaf_port, remote_tls(certs, first=first))
        ok = poll_sync(lambda: leafs(top) == 1 and leafs(spoke) == 1, timeout=15)
        assert ok, top.log_text()[-2000:] + spoke.log_text()[-2000:]
        await crosses_both_ways(top, spoke)
    finally:
        if spoke:
            spoke.stop()
        top.stop()


# what each server logs when the hub's certificate is not one it can trust
UNTRUSTED = {"nats-server": "certificate", "edgebus": "TLS handshake"}
NO_TLS_CONFIG = {"nats-server": "certificate", "edgebus": "the hub requires TLS"}


@pytest.mark.parametrize("spoke_kind", ["nats-server", "edgebus"])
async def test_no_link_to_a_hub_that_cannot_be_verified(tmp_path, certs, spoke_kind):
    """A hub whose certificate does not chain to the remote's CA, and a hub that requires TLS
    dialled by a remote without any TLS settings: no link, and the log says why."""
    top, leaf_port = top_server(tmp_path, "nats-server", certs)
    try:
        for name, url, remote, said in [
            ("stranger", f"tls://{HOST}:{leaf_port}", remote_tls(certs, ca="stranger"), UNTRUSTED),
            ("plain", f"nats-leaf://{HOST}:{leaf_port}", "", NO_TLS_CONFIG),
        ]:
            s = Server(tmp_path / name, config_text=f"""
server_name: {name}
leafnodes {{ remotes: [ {{ url: "{url}"{", " + remote if remote else ""} }} ], reconnect: "250ms" }}
""")
            start(spoke_kind, s)
            try:
                assert poll_sync(lambda: said[spoke_kind] in s.log_text(), timeout=10), s.log_text()[-2000:]
                assert leafs(s) == 0 and leafs(top) == 0
            finally:
                s.stop()
    finally:
        top.stop()


@pytest.mark.parametrize("block,needle", [
    ('remotes: [ { url: "tls://127.0.0.1:1" } ]', "ca_file"),
    ('remotes: [ { url: "nats-leaf://127.0.0.1:1", tls { cert_file: "/nonexistent.pem", ca_file: "/nonexistent.pem" } } ]',
     "/nonexistent.pem"),
    ('listen: "127.0.0.1:-1", tls { cert_file: "/nonexistent.pem", key_file: "/nonexistent.key" }', "/nonexistent.pem"),
])
def test_tls_that_cannot_be_honoured_refuses_to_start(tmp_path, block, needle):
    s = Server(tmp_path, config_text=f"leafnodes {{ {block} }}\n")
    with pytest.raises(RuntimeError) as e:
        start("edgebus", s)
    assert needle in str(e.value)


@pytest.mark.parametrize("top_kind", ["nats-server", "edgebus"])
@pytest.mark.parametrize("where", ["leafnodes tls", "tls"])
async def test_a_reload_with_tls_configured(tmp_path, certs, where, top_kind):
    """A reload that loads the same TLS files again passes, and so does one whose certificate
    file now holds another certificate (new connections get it; test_tls_reload checks
    that): the leaf link opened before it stays up and keeps carrying messages."""
    d = tmp_path / "certs"
    d.mkdir()
    for f in ("ca.pem", "ca.key", "server.pem", "server.key"):
        (d / f).write_bytes((certs / f).read_bytes())
    leaf_port = free_port()
    tls = f'tls {{ cert_file: "{d}/server.pem", key_file: "{d}/server.key" }}'
    leaf_tls = port_tls(d) if where == "leafnodes tls" else ""
    top = Server(tmp_path / "top", config_text=f"""
server_name: top
leafnodes {{
  listen: "{HOST}:{leaf_port}"
  {leaf_tls}
}}
{tls if where == "tls" else ""}
""")
    start(top_kind, top)
    spoke = None
    try:
        url = f"tls://{HOST}:{leaf_port}" if leaf_tls else f"nats-leaf://{HOST}:{leaf_port}"
        remote = f", {remote_tls(certs)}" if leaf_tls else ""
        spoke = Server(tmp_path / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "{url}"{remote} }} ], reconnect: "250ms" }}
""")
        start("nats-server", spoke)
        assert poll_sync(lambda: leafs(top) == 1, timeout=15), top.log_text()[-2000:] + spoke.log_text()[-2000:]

        top.signal(signal.SIGHUP)
        assert poll_sync(lambda: "Reloaded server configuration" in top.log_text(), timeout=10), top.log_text()[-2000:]
        assert "Failed to reload" not in top.log_text()

        make_cert(d, "ca", "server", "serverAuth")  # a new key and certificate in the same files
        top.signal(signal.SIGHUP)
        assert poll_sync(lambda: top.log_text().count("Reloaded server configuration") == 2, timeout=10), \
            top.log_text()[-2000:]
        assert "Failed to reload" not in top.log_text()
        assert leafs(top) == 1
        if where == "leafnodes tls":  # (with TLS on its client port, top's clients would need it too)
            await crosses_both_ways(top, spoke)
    finally:
        if spoke:
            spoke.stop()
        top.stop()
