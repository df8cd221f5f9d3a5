"""The chat benchmarks' baseline: a minimal relay written directly on ``websockets``.

``python benchmarks/_rawrelay.py PORT``. A client connects to ``/<pair>/<side>`` (side
``a`` or ``b``); every text frame it sends is forwarded as is to the other side of the
same pair, if connected. Nothing is parsed, stored or acknowledged: it is the floor a
relay in Python on this machine can reach. Idle sockets only cost what the library's
connection costs (``chat_idle`` uses it that way).
"""

from __future__ import annotations

import asyncio
import resource
import sys

from websockets.asyncio.server import ServerConnection, serve

PAIRS: dict[str, dict[str, ServerConnection]] = {}


async def handler(ws: ServerConnection) -> None:
    parts = ws.request.path.strip("/").split("/") if ws.request else []
    pair, side = (parts + ["", ""])[:2]
    other = "b" if side == "a" else "a"
    ends = PAIRS.setdefault(pair, {})
    ends[side] = ws
    try:
        async for frame in ws:
            peer = ends.get(other)
            if peer is not None:
                await peer.send(frame)
    except Exception:  # noqa: S110 - a dropped peer is not the relay's problem
        pass
    finally:
        if ends.get(side) is ws:
            del ends[side]
        if not ends:
            PAIRS.pop(pair, None)


async def main(port: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Like Daphne: no compression, a keep-alive ping every 20 s.
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**16):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
