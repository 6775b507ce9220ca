"""`npm start -- --cluster` (server-ws/start.sh, server-ws/cluster.sh): the demo topology
starts — a 3-node nats-server cluster and edgebus as its leaf — and a message crosses both
ways between a client of edgebus and a client of hub node 2. The demo uses fixed ports
(4222, 8222, 8080, 4232-4234, 6232-6234, 7422-7424, 8232-8234); the test is skipped when
one of them is taken (another demo running on this machine). Without the web demo
(EDGEBUS_NO_WEB=1); the store is the test's own directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

from conftest import REPO, accepts
from edgehelp import HOST, http_json, nats_connect, poll_sync
from test_leaf import flows, subject

PORTS = [4222, 8222, 8080] + [p + i for p in (4232, 6232, 7422, 8232) for i in range(3)]


def taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def leafz(port: int) -> int:
    try:
        return http_json(port, "/leafz")["leafnodes"]
    except (OSError, AssertionError, ValueError):
        return -1


async def test_npm_start_cluster_links_edgebus_to_the_cluster(tmp_path):
    busy = [p for p in PORTS if taken(p)]
    if busy:
        pytest.skip(f"the demo's fixed ports are in use: {busy}")
    env = {**os.environ, "EDGEBUS_NO_WEB": "1", "EDGEBUS_STORE_DIR": str(tmp_path)}
    log = open(tmp_path / "start.log", "wb")
    proc = subprocess.Popen(["bash", "server-ws/start.sh", "--cluster"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ok = poll_sync(lambda: leafz(8222) == 1 and leafz(8233) >= 0, timeout=600, every=0.5)
        assert ok, (tmp_path / "start.log").read_text()[-3000:]
        at_edge = await nats_connect(f"nats://{HOST}:4222")
        at_hub = await nats_connect(f"nats://{HOST}:4233")
        try:
            up, down = subject(), subject()
            up_sub, down_sub = await at_hub.subscribe(up), await at_edge.subscribe(down)
            await flows(at_edge, up, up_sub)
            await flows(at_hub, down, down_sub)
        finally:
            await at_edge.close()
            await at_hub.close()
    finally:
        # the server, the script and the cluster nodes share the session's process group
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert poll_sync(lambda: not any(accepts(p) for p in (4222, 4232, 4233, 4234)), timeout=15)
