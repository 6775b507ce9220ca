"""A real disk running full under a real server (issue 14: "ENOSPC on a small tmpfs").

The server runs in its own mount namespace (`unshare --user --map-root-user --mount`, no
privileges needed where user namespaces are allowed) with its store directory on a 2 MiB
tmpfs, most of it taken by a filler file. JetStream publishes go on until the disk refuses
one; then every publish that was acknowledged must be in the stream, byte for byte, and
nothing refused may be. Removing the filler (through `/proc/<pid>/root`, which sees the
server's namespace) gives the space back, and publishing works again without a restart.

Skipped, with the reason printed, where the machine does not allow the namespace or the mount.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import pytest

from conftest import EDGEBUS_ONLY
from edgehelp import js_api, nats_connect

pytestmark = pytest.mark.skipif(not EDGEBUS_ONLY, reason="runs edgebus inside a mount namespace")

TMPFS_SIZE = 2 << 20
FREE_AT_START = 256 << 10
PAYLOAD = 1000


def namespaces_allowed() -> str | None:
    """None when `unshare` can mount a tmpfs here, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\""],
        capture_output=True, text=True, timeout=20,
    )
    if probe.returncode != 0:
        return f"unshare/mount not allowed here: {probe.stderr.strip() or probe.returncode}"
    return None


@pytest.fixture(params=["default", "always"])
def full_disk_server(request, make_server):
    why = namespaces_allowed()
    if why:
        print(f"SKIP test_disk_full: {why}")
        pytest.skip(why)
    extra = "jetstream { sync_interval: always }\n" if request.param == "always" else ""
    srv = make_server(extra_config=extra, jetstream=True, start=False)
    filler = srv.store_dir / "filler"
    fill_kib = (TMPFS_SIZE - FREE_AT_START) >> 10
    script = (
        f'mount -t tmpfs -o size={TMPFS_SIZE} tmpfs "$0" && '
        f'dd if=/dev/zero of="$0/filler" bs=1k count={fill_kib} 2>/dev/null && exec "$@"'
    )
    argv = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script,
            str(srv.store_dir), *srv.argv()]
    srv.start(argv)
    srv.filler_path = f"/proc/{srv.proc.pid}/root{filler}"
    assert os.path.exists(srv.filler_path), "the filler is not visible through /proc/<pid>/root"
    yield srv


def payload(i: int) -> bytes:
    head = f"{i:08d}|".encode()
    return head + bytes([i % 251]) * (PAYLOAD - len(head))


async def test_a_full_disk_refuses_publishes_keeps_every_ack_and_recovers(full_disk_server):
    srv = full_disk_server
    nc = await nats_connect(srv.url)
    try:
        created = await js_api(nc, "$JS.API.STREAM.CREATE.DISK",
                               {"name": "DISK", "subjects": ["disk.>"], "storage": "file"})
        assert "error" not in created, created

        acked: list[int] = []
        refused = None
        for i in range(1, 2000):
            msg = await nc.request(f"disk.{i}", payload(i), timeout=5)
            body = json.loads(msg.data)
            if "error" in body:
                refused = (i, body["error"])
                break
            assert body["seq"] == len(acked) + 1, body
            acked.append(i)
        assert refused is not None, "the disk never filled"
        assert acked, "the disk was full before the first publish"
        i_refused, err = refused
        assert err["code"] == 503, err
        print(f"disk full after {len(acked)} acknowledged publishes: {err}")

        # every acknowledged message is there, intact; the refused one is not
        info = await js_api(nc, "$JS.API.STREAM.INFO.DISK", {})
        assert info["state"]["messages"] == len(acked), info["state"]
        assert info["state"]["last_seq"] == len(acked), info["state"]
        for seq, i in enumerate(acked, start=1):
            got = await js_api(nc, "$JS.API.STREAM.MSG.GET.DISK", {"seq": seq})
            assert "error" not in got, (seq, got)
            assert got["message"]["subject"] == f"disk.{i}"
            assert base64.b64decode(got["message"]["data"]) == payload(i), seq

        # space comes back: publishing works again, no restart
        os.remove(srv.filler_path)
        msg = await nc.request("disk.after", b"after", timeout=5)
        body = json.loads(msg.data)
        assert "error" not in body, body
        assert body["seq"] == len(acked) + 1, body
        info = await js_api(nc, "$JS.API.STREAM.INFO.DISK", {})
        assert info["state"]["messages"] == len(acked) + 1, info["state"]
        assert "panicked" not in srv.log_text()
    finally:
        await nc.close()
