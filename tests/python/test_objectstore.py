"""Object store through nats-py 2.16 (`js.create_object_store`, `js.object_store`).

An object store is an `OBJ_<bucket>` stream: chunks on `$O.<bucket>.C.<nuid>`,
one metadata message per object on `$O.<bucket>.M.<base64url(name)>`. These
tests use the client API and check the backing stream's state (chunks purged on
delete and overwrite). Behaviour was taken from nats-server 2.14.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import uuid

import nats
import pytest
from nats.js import api
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError

CHUNK = 128 * 1024  # the clients' default max_chunk_size


@pytest.fixture
def bucket() -> str:
    return "obj_" + uuid.uuid4().hex[:10]


def digest_of(data: bytes) -> str:
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()


def meta_subject(bucket: str, name: str) -> str:
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


def pattern(size: int, seed: int) -> bytes:
    """Deterministic, non-repeating-looking bytes (so a misplaced chunk shows)."""
    out = bytearray()
    block = hashlib.sha256(f"seed-{seed}".encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


async def chunk_count(js, bucket: str, nuid: str) -> int:
    """How many messages the stream holds on one object's chunk subject."""
    info = await js.stream_info(f"OBJ_{bucket}", subjects_filter=f"$O.{bucket}.C.{nuid}")
    return (info.state.subjects or {}).get(f"$O.{bucket}.C.{nuid}", 0)


async def test_bucket_stream_config(js, bucket):
    obs = await js.create_object_store(bucket=bucket, description="blobs")
    cfg = (await js.stream_info(f"OBJ_{bucket}")).config
    assert cfg.subjects == [f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"]
    assert cfg.allow_rollup_hdrs is True
    assert cfg.discard == api.DiscardPolicy.NEW
    assert cfg.description == "blobs"
    status = await obs.status()
    assert status.bucket == bucket and status.sealed is False and status.size == 0
    bound = await js.object_store(bucket)
    await obs.put("x", b"y")
    assert (await bound.get("x")).data == b"y"
    with pytest.raises(BucketNotFoundError):
        await js.object_store(bucket + "_missing")


async def test_five_mib_object_round_trip(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    data = pattern(5 * 1024 * 1024, 1)
    info = await obs.put("big/five.bin", data)
    assert info.size == len(data)
    assert info.chunks == 40  # 5 MiB / 128 KiB
    assert info.digest == digest_of(data)

    res = await obs.get("big/five.bin")
    assert len(res.data) == len(data)
    assert res.data == data
    assert res.info.size == len(data)

    meta = await obs.get_info("big/five.bin")
    assert (meta.name, meta.bucket, meta.size, meta.chunks) == ("big/five.bin", bucket, len(data), 40)
    assert meta.digest == digest_of(data)
    assert meta.nuid and not meta.deleted
    assert await chunk_count(js, bucket, meta.nuid) == 40
    # The metadata lives on the base64url-encoded name's subject.
    raw = await js.get_last_msg(f"OBJ_{bucket}", meta_subject(bucket, "big/five.bin"))
    assert json.loads(raw.data)["nuid"] == meta.nuid

    # Streamed read into a writer gives the same bytes.
    sink = io.BytesIO()
    await obs.get("big/five.bin", writeinto=sink)
    assert sink.getvalue() == data


@pytest.mark.parametrize("size,chunks", [(CHUNK, 1), (CHUNK + 1, 2), (1024 * 1024, 8), (1024 * 1024 + 1, 9)])
async def test_chunk_boundaries(js, bucket, size, chunks):
    obs = await js.create_object_store(bucket=bucket)
    data = pattern(size, size)
    info = await obs.put("edge", data)
    assert (info.size, info.chunks) == (size, chunks)
    got = await obs.get("edge")
    assert got.data == data
    assert got.info.digest == digest_of(data)
    # The last chunk holds exactly the remainder.
    state = (await js.stream_info(f"OBJ_{bucket}")).state
    assert state.messages == chunks + 1  # chunks plus the metadata message


async def test_empty_object(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    info = await obs.put("empty", b"")
    assert (info.size, info.chunks) == (0, 0)
    assert info.digest == digest_of(b"")
    res = await obs.get("empty")
    assert res.data == b""
    assert (await obs.get_info("empty")).size == 0


async def test_missing_object(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    with pytest.raises(ObjectNotFoundError):
        await obs.get("nope")
    with pytest.raises(ObjectNotFoundError):
        await obs.get_info("nope")
    await obs.put("present", b"1")
    with pytest.raises(ObjectNotFoundError):
        await obs.get("nope")


async def test_delete_purges_chunks(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    keep = pattern(300_000, 7)
    doomed = pattern(700_000, 8)
    await obs.put("keep", keep)
    info = await obs.put("doomed", doomed)
    assert info.chunks == 6
    before = (await js.stream_info(f"OBJ_{bucket}")).state
    assert before.messages == 3 + 6 + 2

    await obs.delete("doomed")
    state = (await js.stream_info(f"OBJ_{bucket}")).state
    # Chunks gone; the metadata message stays (now marked deleted).
    assert state.messages == 3 + 1 + 1
    assert await chunk_count(js, bucket, info.nuid) == 0
    with pytest.raises(ObjectNotFoundError):
        await obs.get("doomed")
    deleted_meta = await obs.get_info("doomed", show_deleted=True)
    assert deleted_meta.deleted is True and deleted_meta.size == 0
    with pytest.raises(ObjectNotFoundError):
        await obs.get_info("doomed")
    assert (await obs.get("keep")).data == keep


async def test_overwrite_replaces_old_chunks(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    first = pattern(400_000, 21)
    second = pattern(150_000, 22)
    old = await obs.put("doc", first)
    assert old.chunks == 4
    new = await obs.put("doc", second)
    assert new.nuid != old.nuid and new.chunks == 2

    assert await chunk_count(js, bucket, old.nuid) == 0
    assert await chunk_count(js, bucket, new.nuid) == 2
    state = (await js.stream_info(f"OBJ_{bucket}")).state
    assert state.messages == 2 + 1  # new chunks + one (rolled-up) meta
    got = await obs.get("doc")
    assert got.data == second and got.info.digest == digest_of(second)


async def test_list_and_watch(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    with pytest.raises(NotFoundError):
        await obs.list()
    await obs.put("a.txt", b"alpha")
    await obs.put("b.txt", b"beta" * 100_000)
    await obs.put("c.txt", b"gamma")
    await obs.delete("c.txt")
    listed = await obs.list(ignore_deletes=True)
    assert sorted((o.name, o.size) for o in listed) == [("a.txt", 5), ("b.txt", 400_000)]
    everything = await obs.list()
    assert sorted((o.name, bool(o.deleted)) for o in everything) == \
        [("a.txt", False), ("b.txt", False), ("c.txt", True)]

    w = await obs.watch()
    initial = []
    while (entry := await w.updates(timeout=5)) is not None:
        initial.append(entry)
    assert sorted(e.name for e in initial) == ["a.txt", "b.txt", "c.txt"]
    await obs.put("d.txt", b"delta")
    await obs.delete("a.txt")
    live = [await w.updates(timeout=5), await w.updates(timeout=5)]
    assert [(e.name, bool(e.deleted)) for e in live] == [("d.txt", False), ("a.txt", True)]
    assert live[0].size == 5 and live[0].digest == digest_of(b"delta")
    await w.stop()

    # updates_only: no initial values, just what happens next.
    w = await obs.watch(updates_only=True)
    await obs.put("e.txt", b"epsilon")
    entry = await w.updates(timeout=5)
    assert entry.name == "e.txt" and entry.size == 7
    with pytest.raises(nats.errors.TimeoutError):
        await w.updates(timeout=0.3)
    await w.stop()


async def test_object_with_description_and_headers(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    meta = api.ObjectMeta(name="described.bin", description="a test object",
                          headers={"Content-Type": ["application/octet-stream"]})
    data = os.urandom(1000)
    await obs.put("described.bin", data, meta=meta)
    info = await obs.get_info("described.bin")
    assert info.description == "a test object"
    assert info.headers == {"Content-Type": ["application/octet-stream"]}
    assert (await obs.get("described.bin")).data == data


async def test_delete_bucket(js, bucket):
    obs = await js.create_object_store(bucket=bucket)
    await obs.put("x", b"1")
    assert await js.delete_object_store(bucket) is True
    with pytest.raises(BucketNotFoundError):
        await js.object_store(bucket)
