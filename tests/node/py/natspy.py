"""A nats-py client driven by a Node test over stdin/stdout, one JSON object per line.

The browser tests need a real nats-py client on the server's side of the link, and the
page is driven from Node (Playwright); this process is that client. Commands arrive as
`{"id": n, "op": ..., ...}` and each gets exactly one answer `{"id": n, "ok": {...}}` or
`{"id": n, "error": "..."}`. Messages on subscriptions are pushed as they arrive:
`{"event": "msg", "sub": name, "subject", "reply", "data", "headers"}`.

Every command that sets something up on the server (subscribe, respond, publish) ends
with `synced()`, a PING/PONG round trip behind the command, so once Node has its answer
the server has processed it and another connection can rely on it.
"""

import asyncio
import json
import sys

import nats


class Driver:
    def __init__(self):
        self.nc = None
        self.js = None
        self.out = sys.stdout

    def emit(self, obj):
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()

    @staticmethod
    def msg_dict(m):
        return {
            "subject": m.subject,
            "reply": m.reply or "",
            "data": m.data.decode("utf-8", "replace"),
            "headers": dict(m.headers or {}),
        }

    async def synced(self):
        """nats-py 2.16's flush() writes its PING straight to the socket, ahead of a SUB or
        PUB still in the client's pending buffer, so its PONG can come back before the server
        saw them. The second flush's PING is written after that buffer went out."""
        await self.nc.flush()
        await self.nc.flush()

    async def op_connect(self, url, name="natspy-helper"):
        # No reconnecting: a test that stops the server wants to see that, not hide it.
        self.nc = await nats.connect(url, name=name, allow_reconnect=False, connect_timeout=10)
        self.js = self.nc.jetstream()
        return {}

    async def op_stream_add(self, name, subjects):
        info = await self.js.add_stream(name=name, subjects=subjects)
        return {"name": info.config.name}

    async def op_stream_read(self, stream, subject, expect, timeout=30):
        """Reads the stream from the start with a pull consumer: the first `expect`
        messages, then how many more the consumer still sees (0 means: no extras)."""
        psub = await self.js.pull_subscribe(subject, durable=f"natspy-{stream.lower()}", stream=stream)
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < expect and loop.time() < deadline:
            try:
                msgs = await psub.fetch(batch=expect - len(got), timeout=2)
            except nats.errors.TimeoutError:
                continue
            for m in msgs:
                d = self.msg_dict(m)
                d["seq"] = m.metadata.sequence.stream
                got.append(d)
                await m.ack()
        info = await psub.consumer_info()
        sinfo = await self.js.stream_info(stream)
        await psub.unsubscribe()
        return {"messages": got, "pending": info.num_pending, "stream_messages": sinfo.state.messages}

    async def op_subscribe(self, name, subject):
        async def cb(m):
            self.emit({"event": "msg", "sub": name, **self.msg_dict(m)})

        await self.nc.subscribe(subject, cb=cb)
        await self.synced()
        return {}

    async def op_respond(self, subject, prefix):
        async def cb(m):
            await m.respond(prefix.encode() + m.data)

        await self.nc.subscribe(subject, cb=cb)
        await self.synced()
        return {}

    async def op_publish(self, subject, data, headers=None):
        await self.nc.publish(subject, data.encode(), headers=headers)
        await self.synced()
        return {}

    async def op_request(self, subject, data, timeout=10):
        m = await self.nc.request(subject, data.encode(), timeout=timeout)
        return self.msg_dict(m)

    async def op_close(self):
        if self.nc is not None:
            await self.nc.close()
        return {}

    async def run_one(self, cmd):
        cid = cmd.pop("id", None)
        op = cmd.pop("op", "")
        try:
            fn = getattr(self, f"op_{op}")
            result = await fn(**cmd)
            self.emit({"id": cid, "ok": result})
        except Exception as e:  # every failure goes back to the test, with its type
            self.emit({"id": cid, "error": f"{type(e).__name__}: {e}"})


async def main():
    driver = Driver()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        if not line.strip():
            continue
        # Each command runs on its own, so a request waiting on the page does not block
        # the commands that would answer it.
        t = asyncio.create_task(driver.run_one(json.loads(line)))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    if driver.nc is not None and not driver.nc.is_closed:
        await driver.nc.close()


if __name__ == "__main__":
    asyncio.run(main())
