"""A client built on Python's `websockets` that checks an echo server.

Usage: python_client.py URL [deflate]. With "deflate" it offers
permessage-deflate (the library's default offer) and checks the server
accepted it. Sends text and binary messages of several sizes,
a fragmented message, a ping, then closes with 4001 "python done". Exits 0 and
prints "ok" when every echo matched; raises otherwise.
"""
import asyncio
import sys

from websockets.asyncio.client import connect

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


async def main():
    deflate = sys.argv[2:] == ["deflate"]
    compression = "deflate" if deflate else None
    async with connect(sys.argv[1], max_size=None, compression=compression, ping_interval=None) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert extensions.startswith("permessage-deflate") == deflate, extensions
        for size in SIZES:
            data = bytes(i % 251 for i in range(size))
            await ws.send(data)
            assert await ws.recv() == data, f"binary {size}"
            text = ("wsproto ✓ " * (size // 10 + 1))[:size]
            await ws.send(text)
            assert await ws.recv() == text, f"text {size}"
        # A fragmented message: an iterable is sent as one frame per item.
        await ws.send(["frag", "ment", "ed ✓"])
        assert await ws.recv() == "fragmented ✓"
        await ws.send([b"\x00\x01", b"\x02"])
        assert await ws.recv() == b"\x00\x01\x02"
        pong = await ws.ping(b"python ping")
        await asyncio.wait_for(pong, 5)
        await ws.close(4001, "python done")
        assert ws.protocol.close_rcvd.code == 4001, ws.protocol.close_rcvd
    print("ok", flush=True)


asyncio.run(main())
