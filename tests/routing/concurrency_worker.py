"""One OS process of the concurrency test: several asyncio tasks hammer one Redis prefix
with arrivals, accepts, declines, ends, wrap-ups and presence changes.

Usage: python -m tests.routing.concurrency_worker PREFIX SEED SECONDS
Every successful accept is appended to ``PREFIX:t:accepts``; capacity seen over its
limit to ``PREFIX:t:over``; the worker's trail (JSON) to ``PREFIX:t:trail``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sys
import time

from routing.clock import SystemClock
from routing.engine import Engine
from routing.errors import TransitionRefused
from routing.policy import RoutingPolicy
from routing.store.redis import RedisStore
from routing.trail import CollectingSink
from tests.routing.conftest import REDIS_URL, line_topology

VOLUNTEERS = {
    f"v{i}": (b, ("phone", "chat"), 1 + i % 3)
    for i, b in enumerate(["north", "north", "east", "south", "harbour", "west", "east", "south"])
}


async def main(prefix: str, seed: int, seconds: float) -> None:
    rng = random.Random(seed)
    store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    sink = CollectingSink()
    engine = Engine(
        store=store,
        clock=SystemClock(),
        policy=RoutingPolicy(offer_timeout_s=2),
        topology=line_topology(),
        sink=sink,
    )
    for vid, (branch, channels, limit) in VOLUNTEERS.items():
        await engine.volunteer_register(
            volunteer_id=vid, branch=branch, channels=channels, chat_limit=limit
        )
    stop = time.monotonic() + seconds
    client = store.client

    async def attempt(coro: object) -> object:
        try:
            return await coro  # type: ignore[misc]
        except TransitionRefused:
            return None

    async def arrivals() -> None:
        while time.monotonic() < stop:
            await engine.contact_enqueue(
                channel=rng.choice(["phone", "chat", "chat"]),
                home_branch=rng.choice(["north", "east", "south", "harbour", "west", None]),
            )
            await asyncio.sleep(rng.uniform(0, 0.01))

    async def agent(vid: str) -> None:
        while time.monotonic() < stop:
            r = rng.random()
            if r < 0.05:
                state = rng.choice(["available", "available", "paused", "off_duty"])
                await attempt(
                    engine.volunteer_presence_set(volunteer_id=vid, channel="all", state=state)
                )
            vol = await store.volunteer_get(volunteer_id=vid)
            for cid in vol.contacts if vol else ():
                c = await store.contact_get(contact_id=cid)
                if c is None:
                    continue
                if c.state == "offered" and c.offered_to == vid:
                    if rng.random() < 0.1:
                        await attempt(engine.offer_decline(contact_id=cid, volunteer_id=vid))
                    elif await attempt(engine.offer_accept(contact_id=cid, volunteer_id=vid)):
                        await client.rpush(f"{prefix}:t:accepts", f"{cid} {vid}")
                elif c.state == "active" and rng.random() < 0.3:
                    await attempt(engine.contact_end(contact_id=cid, by="volunteer"))
                elif c.state == "wrap_up":
                    await attempt(engine.contact_wrapup_done(contact_id=cid, volunteer_id=vid))
            await asyncio.sleep(rng.uniform(0, 0.005))

    async def checker() -> None:
        while time.monotonic() < stop:
            for vid in VOLUNTEERS:
                v = await store.volunteer_get(volunteer_id=vid)
                if v and (
                    v.load_chat > v.chat_limit or v.load_phone > 1 or (v.load_phone and v.load_chat)
                ):
                    await client.rpush(f"{prefix}:t:over", repr(v))
            await engine.tick()
            await asyncio.sleep(0.01)

    await asyncio.gather(arrivals(), arrivals(), checker(), *(agent(v) for v in VOLUNTEERS))
    for entry in sink.trail:
        row = dataclasses.asdict(entry)
        row["started_hour"] = row["started_hour"].isoformat()
        await client.rpush(f"{prefix}:t:trail", json.dumps(row))
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
