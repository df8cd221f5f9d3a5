"""Chat test helpers: websocket clients through the real ASGI app (origin check and
auth middleware included), a routing engine per test, and a chat key prefix per test."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from listenline.asgi import application
from routing import services as routing
from tests.conftest import PASSWORD

ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


def _routing_store(prefix: str) -> Any:
    try:
        from routing.store.redis import RedisStore
    except ImportError:
        from routing.store.memory import MemoryStore

        return MemoryStore()
    return RedisStore.from_url(settings.REDIS_URL, prefix=prefix)


@pytest.fixture
def chat_env(transactional_db: Any, geography: None, settings: Any) -> Iterator[Any]:
    """Fresh chat keys and routing state for one test; short grace periods."""
    run = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
    settings.CHAT_REDIS_PREFIX = f"lltest:chat:{run}"
    settings.CHAT_CALLER_GRACE_S = 2.0
    settings.CHAT_SWEEP_S = 0.2
    settings.CHAT_QUEUE_DEBOUNCE_S = 0.1
    store = _routing_store(f"lltest:rt:{run}")
    engine = routing.build_engine(store=store)
    routing.set_engine(engine)
    yield engine
    routing.set_engine(None)


async def redis_cleanup(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.REDIS_URL)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


class Client_:
    """A websocket peer with a small inbox that skips frames a test is not waiting for."""

    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.frames: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def next(self, wait: float = 3.0) -> dict[str, Any]:
        out = await self.comm.receive_output(wait)
        if out["type"] == "websocket.close":
            return {"type": "__close__", "code": out.get("code")}
        frame = json.loads(out["text"])
        self.frames.append(frame)
        return frame

    async def expect(self, type_: str, wait: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next frame of this type (and these field values), skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no {type_} {match} within {wait}s; saw {self.frames[-8:]}")
            frame = await self.next(left)
            if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def nothing(self, wait: float = 0.3) -> bool:
        return await self.comm.receive_nothing(wait)

    async def close(self) -> None:
        await self.comm.disconnect()


async def caller_connect() -> Client_:
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=ORIGIN)
    connected, _ = await comm.connect()
    assert connected
    return Client_(comm)


@sync_to_async
def session_cookie(username: str) -> bytes:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def console_connect(username: str, sync: bool = True) -> Client_:
    cookie = await session_cookie(username)
    comm = WebsocketCommunicator(
        application, "/ws/console/", headers=[*ORIGIN, (b"cookie", cookie)]
    )
    connected, _ = await comm.connect()
    assert connected
    client = Client_(comm)
    if sync:
        await client.send(type="sync")
        await client.expect("state")
    return client


async def on_duty(console: Client_) -> None:
    await console.send(type="presence", channel="chat", state="available")
    await console.expect("presence", channel="chat", state="available")


async def conversation(
    console: Client_, municipality: str | None = "GM0344"
) -> tuple[Client_, str, str]:
    """A caller starts, the volunteer accepts: returns (caller, token, contact id)."""
    caller = await caller_connect()
    await caller.send(type="start", municipality=municipality)
    session = await caller.expect("session")
    offer = await console.expect("offer")
    await console.send(type="offer.accept", contact_id=offer["contact_id"])
    await console.expect("contact", state="active")
    await caller.expect("joined")
    return caller, session["token"], offer["contact_id"]


@pytest.fixture(autouse=True)
async def background_stopped(settings: Any) -> AsyncIterator[None]:
    """Stop the per-loop background tasks (routing ticker, chat sweeper, queue watch)
    inside the test's loop, so closing the loop never waits on them; drop chat keys."""
    yield
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    prefix = getattr(settings, "CHAT_REDIS_PREFIX", "")
    if prefix.startswith("lltest:chat:"):
        await redis_cleanup(prefix)
        await redis_cleanup(prefix.replace("lltest:chat:", "lltest:rt:", 1))
