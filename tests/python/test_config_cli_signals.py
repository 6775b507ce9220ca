"""Config-file features, nats-server style command-line flags, and SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time

from conftest import BASE_CONFIG, bin_argv, free_port
from edgehelp import Wire, http_get, poll_sync


def info_of(port: int) -> dict:
    with Wire(port) as w:
        return w.info()


# ------------------------------------------------------------ config file ---

def test_include_of_a_second_file(make_server, token):
    srv = make_server(start=False)
    (srv.workdir / "limits.conf").write_text("max_payload: 2KB\n")
    srv.config_path.write_text(srv.config_path.read_text() + 'include "limits.conf"\n')
    srv.start()
    assert info_of(srv.port)["max_payload"] == 2048


def test_variables_from_the_file_and_the_environment(make_server, token):
    srv = make_server(
        "PAYLOAD_LIMIT: 3KB\n"
        "max_payload: $PAYLOAD_LIMIT\n"
        "authorization { token: $EDGEBUS_TEST_SECRET }\n",
        start=False,
    )
    srv.env["EDGEBUS_TEST_SECRET"] = f"env-{token}"
    srv.start()
    info = info_of(srv.port)
    assert info["max_payload"] == 3072
    assert info.get("auth_required") is True
    with Wire(srv.port) as w:
        w.hello(auth_token=f"env-{token}")
        assert w.roundtrip() == b"PONG\r\n"
    with Wire(srv.port) as w:
        w.hello(sync=False, auth_token="$EDGEBUS_TEST_SECRET")
        w.send(b"PING\r\n")
        assert w.line() == b"-ERR 'Authorization Violation'"


def test_unknown_config_key_is_reported(make_server, edgebus_only, token):
    """edgebus warns about an unknown key and keeps running; nats-server 2.14
    refuses to start instead. Either way the key must be named in the output."""
    key = f"no_such_option_{token}"
    srv = make_server(f"{key}: 42\n", start=False)
    if edgebus_only:
        srv.start()
        assert info_of(srv.port)["max_payload"] == 1048576
        assert poll_sync(lambda: key in srv.log_text(), timeout=5), \
            f"log does not mention {key}:\n{srv.log_text()[-2000:]}"
    else:
        proc = srv.spawn()
        rc = proc.wait(timeout=10)
        assert rc != 0
        assert key in srv.log_text()


def test_config_values_apply(make_server):
    srv = make_server("max_payload: 512\nmax_control_line: 1024\n")
    assert info_of(srv.port)["max_payload"] == 512
    with Wire(srv.port) as w:
        w.hello()
        w.send(b"SUB " + b"a" * 1100 + b" 1\r\n")
        assert w.line() == b"-ERR 'maximum control line exceeded'"


# -------------------------------------------------------------------- CLI ---

def test_short_flags(make_server):
    srv = make_server(start=False)
    srv.start(argv=bin_argv() + ["-a", "127.0.0.1", "-p", str(srv.port), "-m", str(srv.http_port)],
              wait_ws=False)
    info = info_of(srv.port)
    assert info["port"] == srv.port
    assert info["host"] == "127.0.0.1"
    status, body = http_get(srv.http_port, "/healthz")
    assert status == 200 and b"ok" in body


def test_long_flags_with_equals(make_server):
    srv = make_server(start=False)
    srv.start(argv=bin_argv() + ["--addr=127.0.0.1", f"--port={srv.port}"], wait_ws=False, wait_http=False)
    info = info_of(srv.port)
    assert info["port"] == srv.port
    assert info["max_payload"] == 1048576


def test_flag_wins_over_config_file(make_server):
    srv = make_server(start=False)
    file_port = free_port()
    srv.config_path.write_text(BASE_CONFIG.format(ws_port=srv.ws_port) + f"port: {file_port}\n")
    srv.start(argv=bin_argv() + ["-c", str(srv.config_path), "-a", "127.0.0.1", "-p", str(srv.port)],
              wait_http=False)
    assert info_of(srv.port)["port"] == srv.port


# ---------------------------------------------------------------- signals ---

def test_sigterm_exits_zero_and_closes_clients(make_server):
    srv = make_server()
    with Wire(srv.port) as w:
        w.hello()
        proc = srv.proc
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("server still running 10 s after SIGTERM")
        assert rc == 0, srv.log_text()[-2000:]
        assert time.monotonic() - started < 5
        assert w.wait_closed(timeout=3), "client connection not closed"
