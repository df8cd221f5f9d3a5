"""Routing fixtures: each store (memory, Redis on a unique prefix), a manual clock and a
small line of five branches: north–east–south in a row, west alone, and strict 'harbour'
(neighbour of south) with rings of 30 s / 90 s."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from routing.clock import ManualClock
from routing.engine import Engine
from routing.policy import RoutingPolicy, Topology
from routing.store.base import RoutingStore
from routing.store.memory import MemoryStore
from routing.store.redis import RedisStore
from routing.trail import CollectingSink

REDIS_URL = "redis://127.0.0.1:6379/0"
START = 1_700_000_000.0


def line_topology(strict: bool = True) -> Topology:
    return Topology.from_dicts(
        {
            "north": ["east"],
            "east": ["north", "south"],
            "south": ["east", "harbour"],
            "harbour": ["south"],
            "west": [],
        },
        rings={"harbour": (30, 90)} if strict else {},
        municipalities={"GM0001": "north", "GM0002": "harbour"},
    )


async def make_store(kind: str) -> RoutingStore:
    if kind == "memory":
        return MemoryStore()
    store = RedisStore.from_url(REDIS_URL, prefix=f"lltest:rt:{uuid.uuid4().hex[:12]}")
    await store.clear()
    return store


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RoutingStore]:
    s = await make_store(request.param)
    yield s
    await s.clear()
    await s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


@pytest.fixture
def engine(store: RoutingStore, clock: ManualClock, sink: CollectingSink) -> Engine:
    return Engine(
        store=store, clock=clock, policy=RoutingPolicy(), topology=line_topology(), sink=sink
    )


async def volunteer(
    engine: Engine,
    vid: str,
    branch: str,
    channels: tuple[str, ...] = ("phone", "chat"),
    chat_limit: int = 2,
    available: bool = True,
) -> str:
    await engine.volunteer_register(
        volunteer_id=vid, branch=branch, channels=channels, chat_limit=chat_limit
    )
    if available:
        await engine.volunteer_presence_set(volunteer_id=vid, channel="all", state="available")
    return vid


async def offered_to(engine: Engine, contact_id: str) -> str:
    c = await engine.store.contact_get(contact_id=contact_id)
    assert c is not None
    return c.offered_to if c.state == "offered" else ""
