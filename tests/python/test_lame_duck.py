"""Lame duck mode, reload and the other operator signals, as nats-server 2.14 answers them.

`SIGUSR2` (or `--signal ldm=<pid>`): every connected client gets an INFO with `ldm: true`
(nats-py calls `lame_duck_mode_cb`), new connections are refused at once, and after the grace
period the clients are closed one by one and the server exits 0. `SIGHUP` reloads the config
file and `SIGUSR1` reopens the log file; neither may kill the process. Each check runs against
nats-server too (EDGEBUS_SERVER_CMD=nats-server).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess

import nats
import pytest

from conftest import bin_argv
from edgehelp import HOST, nats_connect

# the shortest duration nats-server accepts, and a grace period short enough for a test
LDM_CONFIG = 'lame_duck_duration: "30s"\nlame_duck_grace_period: "1s"\n'


def refused(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


async def ldm_clients(srv, n: int):
    """`n` nats-py clients whose lame-duck callback and close resolve futures."""
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        told, closed = loop.create_future(), loop.create_future()

        async def on_ldm(told=told):
            if not told.done():
                told.set_result(True)

        async def on_closed(closed=closed):
            if not closed.done():
                closed.set_result(True)

        nc = await nats_connect(srv.url, lame_duck_mode_cb=on_ldm, closed_cb=on_closed)
        out.append((nc, told, closed))
    return out


async def wait_exit(proc: subprocess.Popen, timeout: float) -> int | None:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, lambda: proc.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        return None


async def test_sigusr2_tells_clients_refuses_new_ones_then_closes_them_and_exits(make_server):
    srv = make_server(LDM_CONFIG)
    clients = await ldm_clients(srv, 3)
    srv.signal(signal.SIGUSR2)
    for _, told, _ in clients:
        await asyncio.wait_for(told, 10)
    # the callbacks came after the listener was closed: nobody new gets in
    assert refused(srv.port)
    # still connected during the grace period: the clients choose when to move
    for nc, _, _ in clients:
        assert nc.is_connected
    for _, _, closed in clients:
        await asyncio.wait_for(closed, 30)
    rc = await wait_exit(srv.proc, 30)
    assert rc == 0, srv.log_text()[-2000:]


async def test_a_client_told_of_lame_duck_mode_moves_to_the_next_server(make_server):
    """nats.py's `ClientLameDuckModeTest`: two servers with their own users, a client that
    knows both (in order); told of lame duck mode it stays connected until it chooses, and
    its `force_reconnect` takes it to the other server."""
    first = make_server(LDM_CONFIG + "authorization { user: foo, password: bar }\n")
    second = make_server("authorization { user: hoge, password: fuga }\n")
    loop = asyncio.get_running_loop()
    told, reconnected = loop.create_future(), loop.create_future()
    nc = None

    async def on_ldm():
        if not told.done():
            told.set_result(nc.is_connected and nc.connected_url.port == first.port)
            await nc.force_reconnect()

    async def on_reconnected():
        if not reconnected.done():
            reconnected.set_result(True)

    nc = await nats.connect(servers=[f"nats://foo:bar@{HOST}:{first.port}", f"nats://hoge:fuga@{HOST}:{second.port}"],
                            dont_randomize=True, connect_timeout=5, lame_duck_mode_cb=on_ldm,
                            reconnected_cb=on_reconnected)
    try:
        assert nc.connected_url.port == first.port
        first.signal(signal.SIGUSR2)
        assert await asyncio.wait_for(told, 10), "still on the first server when told"
        await asyncio.wait_for(reconnected, 10)
        assert nc.is_connected and nc.connected_url.port == second.port
    finally:
        await nc.close()


async def test_signal_flag_puts_the_server_named_by_its_pid_file_in_lame_duck_mode(make_server, tmp_path):
    pid_file = tmp_path / "server.pid"
    srv = make_server(LDM_CONFIG + f'pid_file: "{pid_file}"\n')
    [(nc, told, closed)] = await ldm_clients(srv, 1)
    done = subprocess.run([*bin_argv(), "--signal", f"ldm={pid_file}"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    await asyncio.wait_for(told, 10)
    await asyncio.wait_for(closed, 30)
    assert await wait_exit(srv.proc, 30) == 0


def test_signal_flag_with_a_bad_pid_fails_naming_it():
    done = subprocess.run([*bin_argv(), "--signal", "ldm=notapid"], capture_output=True, timeout=30)
    assert done.returncode != 0
    assert b"invalid pid: notapid" in done.stderr + done.stdout


@pytest.mark.parametrize("conf, words", [
    ('lame_duck_duration: "10s"\n', "invalid lame_duck_duration of 10s, minimum is 30 seconds"),
    ('lame_duck_duration: "30s"\nlame_duck_grace_period: "30s"\n',
     "lame duck grace period (30s) should be strictly lower than lame duck duration (30s)"),
])
def test_lame_duck_settings_are_checked_at_start(make_server, conf, words):
    srv = make_server(conf, start=False)
    proc = srv.spawn()
    assert proc.wait(timeout=30) != 0
    srv.stop()
    assert words in srv.log_text()


async def test_sighup_with_an_unchanged_config_keeps_serving(make_server):
    srv = make_server()
    nc = await nats_connect(srv.url)
    srv.signal(signal.SIGHUP)
    # a request answered after the signal: the process and the connection are alive
    async def echo(m):
        await m.respond(m.data)

    sub = await nc.subscribe("hup.echo", cb=echo)
    assert (await nc.request("hup.echo", b"still here", timeout=5)).data == b"still here"
    await sub.unsubscribe()
    await nc.close()
    assert srv.proc.poll() is None


async def test_sighup_refuses_a_change_it_cannot_apply_and_keeps_the_old_settings(make_server, edgebus_only):
    if not edgebus_only:
        pytest.skip("nats-server names the option MaxPending (test_reload_limits checks both)")
    srv = make_server()
    # max_pending cannot change (nats-server refuses it too); max_payload could, but a
    # refused reload applies nothing
    srv.config_path.write_text(srv.config_path.read_text() + "\nmax_pending: 1MB\nmax_payload: 100\n")
    srv.signal(signal.SIGHUP)
    nc = await nats_connect(srv.url)
    # a round trip after the signal: the reload has been decided by now
    await nc.flush(timeout=5)
    for _ in range(50):
        if "config reload not supported for max_pending" in srv.log_text():
            break
        await asyncio.sleep(0.1)
    assert "config reload not supported for max_pending" in srv.log_text()
    assert nc.max_payload == 1024 * 1024
    await nc.close()


async def test_sigusr1_reopens_a_rotated_log_file(make_server, tmp_path):
    log = tmp_path / "rotated.log"
    srv = make_server(f'log_file: "{log}"\n')
    rotated = tmp_path / "rotated.log.1"
    log.rename(rotated)
    srv.signal(signal.SIGUSR1)
    for _ in range(100):
        if log.exists():
            break
        await asyncio.sleep(0.05)
    assert log.exists(), "no new log file after SIGUSR1"
    # what the server logs from now on lands in the new file
    srv.signal(signal.SIGUSR2)
    assert await wait_exit(srv.proc, 30) == 0
    assert "lame duck" in log.read_text().lower()



async def test_sighup_moves_the_log_to_a_new_log_file(make_server, tmp_path):
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    srv = make_server(f'log_file: "{first}"\n')
    srv.config_path.write_text(srv.config_path.read_text().replace(str(first), str(second)))
    srv.signal(signal.SIGHUP)
    for _ in range(100):
        if second.exists():
            break
        await asyncio.sleep(0.05)
    assert second.exists(), "no log file at the new path after the reload"
    # what the server logs from now on lands in the new file, nothing more in the old one
    before = first.read_text()
    srv.signal(signal.SIGUSR2)
    assert await wait_exit(srv.proc, 30) == 0
    assert "lame duck" in second.read_text().lower()
    assert "lame duck" not in first.read_text().lower() and first.read_text() == before

USERS = """
authorization {{
  users: [
    {{ user: a, password: pa {perms} }}
    {{ user: {second}, password: p2 }}
  ]
}}
"""


async def test_sighup_applies_new_users_and_closes_the_ones_removed(make_server):
    srv = make_server(USERS.format(perms="", second="b"))
    base = srv.config_path.read_text()
    loop = asyncio.get_running_loop()
    b_closed = loop.create_future()

    async def on_b_closed():
        if not b_closed.done():
            b_closed.set_result(True)

    a = await nats_connect(f"nats://a:pa@{HOST}:{srv.port}")
    b = await nats_connect(f"nats://b:p2@{HOST}:{srv.port}", closed_cb=on_b_closed)
    srv.config_path.write_text(base.replace("user: b,", "user: c,"))
    srv.signal(signal.SIGHUP)
    await asyncio.wait_for(b_closed, 10)
    # a is untouched: a round trip through the server after the reload
    async def echo(m):
        await m.respond(m.data)

    await a.subscribe("reload.echo", cb=echo)
    assert (await a.request("reload.echo", b"kept", timeout=5)).data == b"kept"
    with pytest.raises(Exception):
        await nats_connect(f"nats://b:p2@{HOST}:{srv.port}")
    c = await nats_connect(f"nats://c:p2@{HOST}:{srv.port}")
    assert (await c.request("reload.echo", b"new user", timeout=5)).data == b"new user"
    await c.close()
    await a.close()


async def test_sighup_with_new_permissions_closes_the_client_they_change(make_server, edgebus_only):
    if not edgebus_only:
        pytest.skip("nats-server swaps permissions in place; edgebus closes the client so it reconnects under them")
    srv = make_server(USERS.format(perms="", second="b"))
    base = srv.config_path.read_text()
    closed = asyncio.get_running_loop().create_future()

    async def on_closed():
        if not closed.done():
            closed.set_result(True)

    a = await nats_connect(f"nats://a:pa@{HOST}:{srv.port}", closed_cb=on_closed)
    b = await nats_connect(f"nats://b:p2@{HOST}:{srv.port}")
    srv.config_path.write_text(base.replace("password: pa ", 'password: pa, permissions: { publish: { deny: ["x.>"] } } '))
    srv.signal(signal.SIGHUP)
    await asyncio.wait_for(closed, 10)
    assert b.is_connected
    await b.flush(timeout=5)
    await b.close()
    assert "authorization violation after a reload" in srv.log_text()
