"""KV buckets and object stores on a file store survive a server restart:
a clean SIGTERM stop, and a SIGKILL with `sync_interval: "always"` (every
acknowledged write is on disk before its ack).

Each test has a private server; the same ports and store dir are used again
after the restart.
"""

from __future__ import annotations

import base64
import hashlib
import signal
import uuid

import pytest
from nats.js import api
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, ObjectNotFoundError

from edgehelp import nats_connect

BLOB_SIZE = 1024 * 1024 + 4321  # a little over 1 MiB: 9 chunks, the last one partial


def blob(seed: str) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < BLOB_SIZE:
        block = hashlib.sha256(block).digest()
        out += block * 32
    return bytes(out[:BLOB_SIZE])


def digest_of(data: bytes) -> str:
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()


async def connect_js(srv):
    nc = await nats_connect(srv.url, name="kv-durability")
    return nc, nc.jetstream(timeout=10)


async def write_state(js, tag: str) -> dict:
    """Writes a bucket (several revisions, a delete, a purge) and an object;
    returns what the reader should find afterwards."""
    kv = await js.create_key_value(bucket=f"dur_{tag}", history=4, storage=api.StorageType.FILE)
    revs = {}
    revs["color"] = [await kv.put("color", v) for v in (b"red", b"green", b"blue")]
    revs["size"] = [await kv.create("size", b"L")]
    await kv.put("tmp", b"short-lived")
    await kv.delete("tmp")
    await kv.put("wiped", b"1")
    await kv.put("wiped", b"2")
    await kv.purge("wiped")
    revs["cfg.path"] = [await kv.put("cfg.path", b"/var/lib")]

    obs = await js.create_object_store(bucket=f"dobj_{tag}", storage=api.StorageType.FILE)
    data = blob(tag)
    info = await obs.put("payload.bin", data)
    assert info.chunks == 9
    await obs.put("small.txt", b"tiny")
    await obs.put("removed.txt", b"soon gone")
    await obs.delete("removed.txt")
    stream_state = (await js.stream_info(f"KV_dur_{tag}")).state
    return {"revs": revs, "blob": data, "nuid": info.nuid, "kv_state": stream_state}


async def check_state(js, tag: str, expect: dict) -> None:
    kv = await js.key_value(f"dur_{tag}")
    st = await kv.status()
    assert st.history == 4

    color = await kv.get("color")
    assert (color.value, color.revision) == (b"blue", expect["revs"]["color"][-1])
    hist = await kv.history("color")
    assert [e.value for e in hist] == [b"red", b"green", b"blue"]
    assert [e.revision for e in hist] == expect["revs"]["color"]
    assert (await kv.get("color", revision=expect["revs"]["color"][0])).value == b"red"
    assert (await kv.get("size")).value == b"L"
    assert (await kv.get("cfg.path")).value == b"/var/lib"

    with pytest.raises(KeyNotFoundError) as exc:
        await kv.get("tmp")
    assert exc.value.op == "DEL"
    with pytest.raises(KeyNotFoundError) as exc:
        await kv.get("wiped")
    assert exc.value.op == "PURGE"
    assert len(await kv.history("wiped")) == 1
    assert sorted(await kv.keys()) == ["cfg.path", "color", "size"]

    state = (await js.stream_info(f"KV_dur_{tag}")).state
    before = expect["kv_state"]
    assert (state.messages, state.first_seq, state.last_seq) == \
        (before.messages, before.first_seq, before.last_seq)

    # The CAS rules still hold against the recovered revisions.
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.create("size", b"XL")
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.update("color", b"stale", last=expect["revs"]["color"][0])
    new_rev = await kv.update("color", b"violet", last=expect["revs"]["color"][-1])
    assert new_rev == before.last_seq + 1
    assert await kv.create("tmp", b"back") == new_rev + 1

    obs = await js.object_store(f"dobj_{tag}")
    info = await obs.get_info("payload.bin")
    assert (info.size, info.chunks, info.nuid) == (BLOB_SIZE, 9, expect["nuid"])
    assert info.digest == digest_of(expect["blob"])
    got = await obs.get("payload.bin")
    assert got.data == expect["blob"]
    assert (await obs.get("small.txt")).data == b"tiny"
    with pytest.raises(ObjectNotFoundError):
        await obs.get("removed.txt")
    listed = await obs.list(ignore_deletes=True)
    assert sorted(o.name for o in listed) == ["payload.bin", "small.txt"]


async def test_kv_and_objects_survive_sigterm_restart(make_server):
    tag = uuid.uuid4().hex[:8]
    srv = make_server(jetstream=True)
    nc, js = await connect_js(srv)
    try:
        expect = await write_state(js, tag)
    finally:
        await nc.close()
    assert srv.kill(signal.SIGTERM) is not None, "server did not exit on SIGTERM"
    srv.restart()
    nc, js = await connect_js(srv)
    try:
        await check_state(js, tag, expect)
    finally:
        await nc.close()


async def test_kv_and_objects_survive_sigkill_with_sync_always(make_server):
    tag = uuid.uuid4().hex[:8]
    srv = make_server(start=False)  # JetStream configured in the file alone
    srv.config_path.write_text(
        srv.config_path.read_text()
        + f'jetstream {{\n  store_dir: "{srv.store_dir}"\n  sync_interval: "always"\n}}\n')
    srv.start()
    nc, js = await connect_js(srv)
    try:
        expect = await write_state(js, tag)
    finally:
        await nc.close()
    srv.kill(signal.SIGKILL)
    srv.restart()
    nc, js = await connect_js(srv)
    try:
        await check_state(js, tag, expect)
    finally:
        await nc.close()
