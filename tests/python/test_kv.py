"""Key-value buckets through nats-py 2.16 (`js.create_key_value`, `js.key_value`).

KV is a client convention over a `KV_<bucket>` stream on `$KV.<bucket>.>`; these
tests drive it only through the client API (plus a look at the backing stream
and a few raw publishes) against the shared JetStream server. Every bucket has
a unique name. Behaviour was taken from nats-server 2.14.
"""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from nats.js import api
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    InvalidKeyError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NoStreamResponseError,
    NotFoundError,
)

from edgehelp import poll


@pytest.fixture
def bucket() -> str:
    return "kvt_" + uuid.uuid4().hex[:10]


async def drain_initial(watcher, timeout: float = 5.0) -> list:
    """Entries a fresh watcher delivers before its end-of-initial-values `None`."""
    got = []
    while True:
        entry = await watcher.updates(timeout=timeout)
        if entry is None:
            return got
        got.append(entry)


async def next_entries(watcher, count: int, timeout: float = 5.0) -> list:
    return [await watcher.updates(timeout=timeout) for _ in range(count)]


async def no_more_updates(watcher, wait: float = 0.3) -> None:
    try:
        extra = await watcher.updates(timeout=wait)
    except nats.errors.TimeoutError:
        return
    raise AssertionError(f"unexpected watch entry {extra!r}")


# ------------------------------------------------------------ the bucket ---

async def test_bucket_is_a_stream_with_the_kv_settings(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=5, description="kv under test")
    info = await js.stream_info(f"KV_{bucket}")
    cfg = info.config
    assert cfg.name == f"KV_{bucket}"
    assert cfg.subjects == [f"$KV.{bucket}.>"]
    assert cfg.max_msgs_per_subject == 5
    assert cfg.discard == api.DiscardPolicy.NEW
    assert cfg.allow_rollup_hdrs is True
    assert cfg.deny_delete is True
    assert cfg.description == "kv under test"
    assert not cfg.max_age  # no bucket TTL
    assert info.state.messages == 0

    status = await kv.status()
    assert (status.bucket, status.history, status.values) == (bucket, 5, 0)

    # A second handle bound to the existing bucket sees the same data.
    rev = await kv.put("color", b"blue")
    bound = await js.key_value(bucket)
    entry = await bound.get("color")
    assert (entry.value, entry.revision, entry.key, entry.bucket) == (b"blue", rev, "color", bucket)
    assert (await bound.status()).values == 1

    with pytest.raises(BucketNotFoundError):
        await js.key_value(bucket + "_missing")


async def test_history_above_64_is_refused_and_default_history_is_one(js, bucket):
    with pytest.raises(nats.js.errors.KeyHistoryTooLargeError):
        await js.create_key_value(bucket=bucket, history=65)
    kv = await js.create_key_value(bucket=bucket)
    assert (await js.stream_info(f"KV_{bucket}")).config.max_msgs_per_subject == 1
    for i in range(3):
        await kv.put("k", f"v{i}".encode())
    history = await kv.history("k")
    assert [e.value for e in history] == [b"v2"]
    assert (await kv.status()).values == 1


async def test_delete_bucket(js, bucket):
    kv = await js.create_key_value(bucket=bucket)
    await kv.put("k", b"v")
    assert await js.delete_key_value(bucket) is True
    with pytest.raises(BucketNotFoundError):
        await js.key_value(bucket)
    with pytest.raises(NotFoundError):
        await js.stream_info(f"KV_{bucket}")
    # The name can be used again, and starts empty.
    kv2 = await js.create_key_value(bucket=bucket)
    with pytest.raises(KeyNotFoundError):
        await kv2.get("k")


# --------------------------------------------------------- put, get, CAS ---

async def test_put_get_and_get_by_revision(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=10)
    r1 = await kv.put("user.alice", b"v1")
    r2 = await kv.put("user.bob", b"b1")
    r3 = await kv.put("user.alice", b"v2")
    assert (r1, r2, r3) == (1, 2, 3)  # revisions are stream sequences

    latest = await kv.get("user.alice")
    assert (latest.value, latest.revision) == (b"v2", 3)
    assert (await kv.get("user.alice", revision=1)).value == b"v1"
    assert (await kv.get("user.bob")).value == b"b1"

    # A revision that belongs to another key is not this key's value.
    with pytest.raises(KeyNotFoundError):
        await kv.get("user.alice", revision=2)
    # Nor is a revision past the end.
    with pytest.raises(KeyNotFoundError):
        await kv.get("user.alice", revision=99)
    with pytest.raises(KeyNotFoundError):
        await kv.get("user.carol")

    # Keys may use the whole key alphabet; binary values come back unchanged.
    odd_key = "cfg/path_to-a=b.x_Y-9"
    blob = bytes(range(256)) * 3
    rev = await kv.put(odd_key, blob)
    got = await kv.get(odd_key)
    assert (got.value, got.revision) == (blob, rev)
    msg = await js.get_msg(f"KV_{bucket}", seq=rev)
    assert msg.subject == f"$KV.{bucket}.{odd_key}"

    # Empty values are values too (not deletes).
    rev = await kv.put("empty", b"")
    got = await kv.get("empty")
    assert (got.value in (b"", None), got.revision) == (True, rev)


async def test_create_is_refused_while_the_key_holds_a_value(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=5)
    r1 = await kv.create("job", b"first")
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.create("job", b"second")
    assert (await kv.get("job")).value == b"first"

    # After a delete the key can be created again ...
    await kv.delete("job")
    r2 = await kv.create("job", b"after-delete")
    assert r2 > r1
    assert (await kv.get("job")).value == b"after-delete"
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.create("job", b"again")

    # ... and after a purge.
    await kv.purge("job")
    r3 = await kv.create("job", b"after-purge")
    assert r3 > r2
    got = await kv.get("job")
    assert (got.value, got.revision) == (b"after-purge", r3)


async def test_update_is_compare_and_set_on_the_revision(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=5)
    r1 = await kv.put("counter", b"1")
    r2 = await kv.update("counter", b"2", last=r1)
    assert r2 == r1 + 1
    # A writer still holding r1 loses.
    with pytest.raises(KeyWrongLastSequenceError) as exc:
        await kv.update("counter", b"stale", last=r1)
    assert "wrong last sequence" in str(exc.value)
    # Another key's revision does not count either: the check is per key.
    other = await kv.put("other", b"x")
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.update("counter", b"stale", last=other)
    assert (await kv.get("counter")).value == b"2"
    r3 = await kv.update("counter", b"3", last=r2)
    assert (await kv.get("counter")).revision == r3

    # update of a missing key with last=0 is a create.
    rnew = await kv.update("fresh", b"f", last=0)
    assert (await kv.get("fresh")).revision == rnew
    # A delete can be made conditional as well; a stale one is refused.
    with pytest.raises(BadRequestError):
        await kv.delete("counter", last=r2)
    assert (await kv.get("counter")).value == b"3"
    await kv.delete("counter", last=r3)
    with pytest.raises(KeyNotFoundError):
        await kv.get("counter")


# ---------------------------------------------------- delete, purge, history ---

async def test_delete_leaves_a_marker_and_purge_collapses_history(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=5)
    stream = f"KV_{bucket}"
    for v in (b"a", b"b", b"c"):
        await kv.put("doc", v)
    await kv.put("other", b"o")
    await kv.delete("doc")

    with pytest.raises(KeyNotFoundError) as exc:
        await kv.get("doc")
    assert exc.value.op == "DEL"
    # The delete is a marker message with a KV-Operation header, not a removal.
    last = await js.get_last_msg(stream, f"$KV.{bucket}.doc")
    assert last.headers and last.headers.get("KV-Operation") == "DEL"
    assert not last.data
    history = await kv.history("doc")
    assert [e.value for e in history[:3]] == [b"a", b"b", b"c"]
    assert [e.operation for e in history] == [None, None, None, "DEL"]
    # Old revisions are still readable by number.
    assert (await kv.get("doc", revision=history[1].revision)).value == b"b"
    assert (await js.stream_info(stream)).state.messages == 5

    await kv.put("doc", b"d")
    await kv.purge("doc")
    with pytest.raises(KeyNotFoundError) as exc:
        await kv.get("doc")
    assert exc.value.op == "PURGE"
    history = await kv.history("doc")
    assert len(history) == 1 and history[0].operation == "PURGE"
    last = await js.get_last_msg(stream, f"$KV.{bucket}.doc")
    assert last.headers.get("KV-Operation") == "PURGE"
    assert last.headers.get("Nats-Rollup") == "sub"
    # The stream holds the purge marker and the untouched other key only.
    state = (await js.stream_info(stream)).state
    assert state.messages == 2
    assert (await kv.get("other")).value == b"o"
    with pytest.raises(KeyNotFoundError):
        await kv.get("doc", revision=history[0].revision - 1)


async def test_history_keeps_the_last_n_revisions(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=5)
    revs = [await kv.put("h", f"v{i}".encode()) for i in range(8)]
    await kv.put("unrelated", b"u")
    history = await kv.history("h")
    assert [e.value for e in history] == [f"v{i}".encode() for i in range(3, 8)]
    assert [e.revision for e in history] == revs[3:]
    assert all(e.key == "h" and e.bucket == bucket for e in history)
    # delta counts down to 0 on the newest entry.
    assert [e.delta for e in history] == [4, 3, 2, 1, 0]
    # Revisions that fell out of the history are gone.
    with pytest.raises(KeyNotFoundError):
        await kv.get("h", revision=revs[0])
    with pytest.raises(NoKeysError):
        await kv.history("never-written")


async def test_keys_lists_live_keys_only(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=3)
    with pytest.raises(NoKeysError):
        await kv.keys()
    for key in ("app.one", "app.two", "db.main", "gone", "purged"):
        await kv.put(key, b"x")
    await kv.put("app.one", b"y")  # two revisions, one key
    await kv.delete("gone")
    await kv.purge("purged")
    assert sorted(await kv.keys()) == ["app.one", "app.two", "db.main"]
    # nats-py's filters are applied by the client (substring match).
    assert sorted(await kv.keys(filters=["app."])) == ["app.one", "app.two"]
    # A subject-filtered watcher (server-side filter) lists the same subset.
    w = await kv.watch("app.*", meta_only=True)
    entries = await drain_initial(w)
    await w.stop()
    assert sorted(e.key for e in entries) == ["app.one", "app.two"]


# ------------------------------------------------------------------ watch ---

async def test_watchall_initial_values_then_live_updates(js, js_nc, bucket):
    kv = await js.create_key_value(bucket=bucket, history=5)
    await kv.put("a", b"a1")
    await kv.put("b", b"b1")
    await kv.put("a", b"a2")
    await kv.put("c", b"c1")
    await kv.delete("c")

    w = await kv.watchall()
    initial = await drain_initial(w)
    # The newest entry per key, deletes included, oldest revision first.
    assert [(e.key, e.value, e.operation) for e in initial] == [
        ("b", b"b1", None), ("a", b"a2", None), ("c", b"", "DEL")]
    assert [e.revision for e in initial] == [2, 3, 5]

    # Live updates, in order, with their operations.
    r = await kv.put("b", b"b2")
    await kv.create("d", b"d1")
    await kv.delete("a")
    await kv.purge("b")
    live = await next_entries(w, 4)
    assert [(e.key, e.operation) for e in live] == [("b", None), ("d", None), ("a", "DEL"), ("b", "PURGE")]
    assert live[0].value == b"b2" and live[0].revision == r
    assert [e.revision for e in live] == list(range(r, r + 4))
    await no_more_updates(w)
    await w.stop()


async def test_watch_on_an_empty_bucket_starts_with_none(js, bucket):
    kv = await js.create_key_value(bucket=bucket)
    w = await kv.watchall()
    assert await w.updates(timeout=5) is None
    await kv.put("first", b"1")
    entry = await w.updates(timeout=5)
    assert (entry.key, entry.value, entry.revision) == ("first", b"1", 1)
    await w.stop()


async def test_watch_filtered_with_history_and_ignoring_deletes(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=10)
    await kv.put("room.1", b"x1")
    await kv.put("room.2", b"y1")
    await kv.put("hall", b"h1")
    await kv.put("room.1", b"x2")
    await kv.delete("room.2")

    # include_history: every stored revision of the matching keys.
    w = await kv.watch("room.*", include_history=True)
    entries = await drain_initial(w)
    assert [(e.key, e.value or b"", e.operation) for e in entries] == [
        ("room.1", b"x1", None), ("room.2", b"y1", None), ("room.1", b"x2", None), ("room.2", b"", "DEL")]
    await kv.put("hall", b"h2")      # does not match the filter
    await kv.put("room.3", b"z1")
    entry = await w.updates(timeout=5)
    assert (entry.key, entry.value) == ("room.3", b"z1")
    await no_more_updates(w)
    await w.stop()

    # ignore_deletes: the deleted key is neither in the initial values nor in live updates.
    w = await kv.watch("room.>", ignore_deletes=True)
    entries = await drain_initial(w)
    assert sorted((e.key, e.value) for e in entries) == [("room.1", b"x2"), ("room.3", b"z1")]
    await kv.delete("room.1")
    await kv.put("room.4", b"w1")
    entry = await w.updates(timeout=5)
    assert (entry.key, entry.operation) == ("room.4", None)
    await no_more_updates(w)
    await w.stop()

    # meta_only (headers only): keys and revisions without values.
    w = await kv.watch("hall", meta_only=True)
    entries = await drain_initial(w)
    assert [(e.key, e.value or b"") for e in entries] == [("hall", b"")]
    assert entries[0].revision == (await kv.get("hall")).revision
    await w.stop()


# -------------------------------------------------------------------- TTL ---

async def test_bucket_ttl_expires_values(js, bucket):
    kv = await js.create_key_value(bucket=bucket, ttl=1)
    cfg = (await js.stream_info(f"KV_{bucket}")).config
    assert cfg.max_age == pytest.approx(1.0)
    assert (await kv.status()).ttl == pytest.approx(1.0)
    await kv.put("short", b"lived")
    assert (await kv.get("short")).value == b"lived"

    async def expired():
        try:
            await kv.get("short")
            return False
        except KeyNotFoundError:
            return True

    assert await poll(expired, timeout=15, every=0.1), "value outlived the bucket ttl"
    assert (await js.stream_info(f"KV_{bucket}")).state.messages == 0
    # The bucket keeps working afterwards.
    rev = await kv.put("short", b"again")
    assert (await kv.get("short")).revision == rev


async def test_per_key_ttl_with_limit_markers(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=1, limit_marker_ttl=2)
    stream = f"KV_{bucket}"
    cfg = (await js.stream_info(stream)).config
    assert cfg.allow_msg_ttl is True
    assert cfg.subject_delete_marker_ttl == pytest.approx(2.0)
    assert (await kv.status()).marker_ttl == pytest.approx(2.0)

    await kv.put("stays", b"s")
    rev = await kv.create("temp", b"t", msg_ttl=1)
    stored = await js.get_msg(stream, seq=rev)
    assert stored.headers.get("Nats-TTL") == "1"
    assert (await kv.get("temp")).value == b"t"

    # When the value expires the server writes a MaxAge marker on the key.
    async def marker():
        last = await js.get_last_msg(stream, f"$KV.{bucket}.temp")
        return last if last.seq != rev else None

    last = await poll(marker, timeout=15, every=0.1)
    assert last, "the per-key TTL did not expire the value"
    assert last.headers.get("Nats-Marker-Reason") == "MaxAge"
    assert not last.data
    with pytest.raises(NotFoundError):
        await js.get_msg(stream, seq=rev)
    assert await kv.keys() == ["stays"]
    w = await kv.watchall()
    entries = await drain_initial(w)
    await w.stop()
    assert [(e.key, e.operation) for e in entries] == [("stays", None), ("temp", "PURGE")]

    # The marker has its own TTL (the bucket's limit_marker_ttl), then the
    # key is gone entirely and the untouched key remains.
    async def marker_gone():
        try:
            await js.get_last_msg(stream, f"$KV.{bucket}.temp")
            return False
        except NotFoundError:
            return True

    assert await poll(marker_gone, timeout=15, every=0.1), "the marker never expired"
    assert (await js.stream_info(stream)).state.messages == 1
    assert (await kv.get("stays")).value == b"s"
    rev2 = await kv.create("temp", b"back")
    assert (await kv.get("temp")).revision == rev2


async def test_per_key_ttl_without_markers(js, bucket):
    kv = await js.create_key_value(bucket=bucket, history=3)
    await kv.put("stays", b"s")
    await kv.create("temp", b"t", msg_ttl=1)

    async def gone():
        try:
            await kv.get("temp")
            return False
        except KeyNotFoundError:
            return True

    assert await poll(gone, timeout=15, every=0.1), "the per-key TTL did not expire the value"
    # No marker without limit_marker_ttl: the key simply has no messages.
    with pytest.raises(NotFoundError):
        await js.get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.temp")
    assert (await js.stream_info(f"KV_{bucket}")).state.messages == 1
    assert (await kv.get("stays")).value == b"s"


# ------------------------------------------------------------ invalid keys ---

@pytest.mark.parametrize("key", ["", ".lead", "trail.", "sp ace", "star*", "gt>", "tab\t", "ümlaut"])
async def test_invalid_keys_are_refused_by_the_client(js, bucket, key):
    kv = await js.create_key_value(bucket=bucket)
    with pytest.raises(InvalidKeyError):
        await kv.put(key, b"x")
    with pytest.raises(InvalidKeyError):
        await kv.get(key)
    with pytest.raises(InvalidKeyError):
        await kv.create(key, b"x")
    assert (await js.stream_info(f"KV_{bucket}")).state.messages == 0


async def test_raw_publishes_to_malformed_key_subjects_are_not_stored(js, js_nc, bucket):
    kv = await js.create_key_value(bucket=bucket)
    await kv.put("ok", b"1")
    # Subjects with an empty token are not subjects the bucket's stream
    # listens on: nobody answers the publish, nothing is stored.
    for subject in (f"$KV.{bucket}.a..b", f"$KV.{bucket}.", f"$KV.{bucket}"):
        with pytest.raises(NoStreamResponseError):
            await js.publish(subject, b"raw")
    # nats-py's own key check lets an empty middle token through; the server
    # refuses it the same way.
    with pytest.raises(NoStreamResponseError):
        await kv.put("dou..ble", b"x")
    assert (await js.stream_info(f"KV_{bucket}")).state.messages == 1
    assert await kv.keys() == ["ok"]
    # The connection is still fine.
    assert (await kv.get("ok")).value == b"1"
