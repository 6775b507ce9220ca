"""JetStream store limits: `max_memory_store` / `max_file_store` are enforced as
nats-server 2.14 enforces them. A stream's `max_bytes` is reserved at create
time (10028 / 10047 when it does not fit); a publish is refused with 503 10023
once the store already holds more than its limit, and nothing refused is
stored. /jsz keeps showing the limits, the usage and the reservations.
"""

from __future__ import annotations

import json

import pytest

from edgehelp import http_json, js_api, nats_connect, poll

MB = 1 << 20
LIMITS = "jetstream { max_memory_store: 1MB, max_file_store: 1MB }\n"


@pytest.fixture
def limited(make_server):
    return make_server(extra_config=LIMITS, jetstream=True)


def create_body(name: str, storage: str, max_bytes: int | None = None) -> dict:
    body = {"name": name, "subjects": [f"{name.lower()}.>"], "storage": storage}
    if max_bytes is not None:
        body["max_bytes"] = max_bytes
    return body


async def create(nc, name: str, storage: str, max_bytes: int | None = None) -> dict:
    return await js_api(nc, f"$JS.API.STREAM.CREATE.{name}", create_body(name, storage, max_bytes))


@pytest.mark.parametrize("storage,code,text", [
    ("memory", 10028, "insufficient memory resources available"),
    ("file", 10047, "insufficient storage resources available"),
])
async def test_a_reservation_larger_than_the_store_is_refused(limited, storage, code, text):
    nc = await nats_connect(limited.url)
    try:
        resp = await create(nc, "BIG", storage, 2 * MB)
        assert resp["error"] == {"code": 500, "err_code": code, "description": text}
        names = await js_api(nc, "$JS.API.STREAM.NAMES")
        assert not names.get("streams")
        # reservations add up: two halves fit, a third byte more does not
        assert "error" not in await create(nc, "HALF1", storage, MB // 2)
        assert "error" not in await create(nc, "HALF2", storage, MB // 2)
        assert (await create(nc, "ONE_MORE", storage, 1))["error"]["err_code"] == code
        # a stream without max_bytes needs one byte of room too
        assert (await create(nc, "UNBOUNDED", storage))["error"]["err_code"] == code
        info = await js_api(nc, "$JS.API.INFO")
        key = "reserved_memory" if storage == "memory" else "reserved_storage"
        assert info[key] == MB
        # a delete gives the reservation back
        assert (await js_api(nc, "$JS.API.STREAM.DELETE.HALF1"))["success"] is True
        assert "error" not in await create(nc, "UNBOUNDED", storage)
    finally:
        await nc.close()


@pytest.mark.parametrize("storage", ["memory", "file"])
async def test_the_publish_that_finds_the_store_full_is_refused_and_not_stored(limited, storage):
    nc = await nats_connect(limited.url)
    try:
        assert "error" not in await create(nc, "FILL", storage)
        payload = b"x" * 100_000
        acked = []
        refusal = None
        for _ in range(20):
            msg = await nc.request("fill.a", payload, timeout=5)
            ack = json.loads(msg.data)
            if "error" in ack:
                refusal = ack
                break
            acked.append(ack["seq"])
        assert refusal == {"error": {"code": 503, "err_code": 10023, "description": "insufficient resources"},
                           "stream": "FILL", "seq": 0}
        assert acked == list(range(1, len(acked) + 1))
        # the store went past 1MB with the last acknowledged message, not before
        info = await js_api(nc, "$JS.API.STREAM.INFO.FILL")
        state = info["state"]
        assert state["messages"] == len(acked) and state["last_seq"] == len(acked)
        assert MB < state["bytes"] < MB + 2 * len(payload)
        # a small message is refused too: the store is over its limit
        small = json.loads((await nc.request("fill.b", b"y", timeout=5)).data)
        assert small["error"]["err_code"] == 10023
        assert (await js_api(nc, "$JS.API.STREAM.INFO.FILL"))["state"]["messages"] == len(acked)
        # /jsz shows the limits and what is used
        key = "memory" if storage == "memory" else "storage"

        def jsz_caught_up():
            jsz = http_json(limited.http_port, "/jsz")
            return jsz if jsz[key] == state["bytes"] else None
        jsz = await poll(jsz_caught_up)
        assert jsz, f"/jsz never showed {key} == {state['bytes']}"
        assert jsz["config"]["max_memory"] == MB and jsz["config"]["max_storage"] == MB
        # a purge makes room again
        assert (await js_api(nc, "$JS.API.STREAM.PURGE.FILL"))["success"] is True
        again = json.loads((await nc.request("fill.c", b"z", timeout=5)).data)
        assert again.get("seq") == len(acked) + 1, again
    finally:
        await nc.close()


async def test_an_update_reserves_only_what_max_bytes_grows_by(limited):
    nc = await nats_connect(limited.url)
    try:
        async def update(name: str, max_bytes: int) -> dict:
            return await js_api(nc, f"$JS.API.STREAM.UPDATE.{name}", create_body(name, "memory", max_bytes))

        assert "error" not in await create(nc, "UA", "memory", MB // 2)
        assert (await update("UA", MB + 1))["error"]["err_code"] == 10028
        assert (await update("UA", MB))["config"]["max_bytes"] == MB
        assert (await update("UA", 10))["config"]["max_bytes"] == 10
        assert "error" not in await create(nc, "UB", "memory")
        assert (await update("UB", MB - 10))["config"]["max_bytes"] == MB - 10
        assert (await update("UB", MB - 9))["error"]["err_code"] == 10028
        assert (await js_api(nc, "$JS.API.INFO"))["reserved_memory"] == MB
    finally:
        await nc.close()
