"""An echo server built on Python's `websockets`, for interop tests.

Usage: python_server.py PORT [deflate]. With "deflate" the server accepts
permessage-deflate with the library's defaults. Prints "ready" once listening, and for every
connection that ends prints one JSON line with the close code and reason it
received, so the test can check them.
"""
import asyncio
import json
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # a close code other than 1000/1001 ends the loop this way
    finally:
        rcvd = ws.protocol.close_rcvd
        print(json.dumps({"code": rcvd.code if rcvd else None, "reason": rcvd.reason if rcvd else None}), flush=True)


async def main():
    port = int(sys.argv[1])
    compression = "deflate" if sys.argv[2:] == ["deflate"] else None
    async with serve(echo, "127.0.0.1", port, max_size=None, compression=compression, ping_interval=None):
        print("ready", flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
