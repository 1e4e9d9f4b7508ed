#!/usr/bin/python3
"""WebSocket (RFC 6455) echo server and client for the gateway tests, with python3-websockets
(Debian's package, hence /usr/bin/python3).

  ws.py serve ADDR PORT                      echoes every message, prefixed "echo:"
  ws.py ask GW_ADDR PORT HOST N              connects through the gateway (Host: HOST), sends
                                             N text and N binary messages, prints how many
                                             came back right
"""
import asyncio
import sys

import websockets


async def serve(addr, port):
    async def echo(ws, path=None):
        async for msg in ws:
            await ws.send(("echo:" + msg) if isinstance(msg, str) else (b"echo:" + msg))

    async with websockets.serve(echo, addr, port):
        await asyncio.Future()


async def ask(gw, port, host, n):
    ok = 0
    async with websockets.connect("ws://%s:%d/chat" % (host, port), host=gw, port=port,
                                  open_timeout=5) as ws:
        for i in range(n):
            await ws.send("text %d" % i)
            if await asyncio.wait_for(ws.recv(), 5) == "echo:text %d" % i:
                ok += 1
            blob = bytes([i % 256]) * (1000 + i * 997 % 60000)
            await ws.send(blob)
            if await asyncio.wait_for(ws.recv(), 5) == b"echo:" + blob:
                ok += 1
    print(ok)


if sys.argv[1] == "serve":
    asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
else:
    asyncio.run(ask(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
