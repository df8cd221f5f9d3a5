"""The pipelined Redis line and subscriber (``listenline.redis_line``) on the real Redis:
replies reach their own callers, errors stay with their call, a lost connection is
reconnected (and a subscriber subscribes again before saying so)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from listenline.redis_line import RedisLine, RedisReplyError, RedisSubscriber, Script

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def names() -> AsyncIterator[str]:
    """A key prefix and client name of this test's own; its keys go afterwards."""
    prefix = f"lltest:line:{secrets.token_hex(4)}"
    yield prefix
    admin = aioredis.from_url(URL)
    try:
        keys = [k async for k in admin.scan_iter(match=f"{prefix}*")]
        if keys:
            await admin.delete(*keys)
    finally:
        await admin.aclose()


async def _kill(name: str) -> int:
    admin = aioredis.from_url(URL)
    try:
        killed = 0
        for info in await admin.client_list():
            if info.get("name") == name:
                await admin.client_kill_filter(_id=info["id"])
                killed += 1
        return killed
    finally:
        await admin.aclose()


async def test_concurrent_calls_each_get_their_own_reply(names: str) -> None:
    line = RedisLine(URL, client_name=names)
    try:

        async def one(i: int) -> bytes:
            await line.call(b"SET", f"{names}:{i}", f"value {i}")
            return await line.call(b"GET", f"{names}:{i}")  # type: ignore[no-any-return]

        got = await asyncio.gather(*(one(i) for i in range(300)))
        assert got == [f"value {i}".encode() for i in range(300)]
    finally:
        line.close()


async def test_an_error_stays_with_its_call_and_the_line_goes_on(names: str) -> None:
    line = RedisLine(URL, client_name=names)
    try:
        await line.call(b"SET", f"{names}:s", "text")
        wrong = line.call(b"INCR", f"{names}:s")  # not a number
        right = line.call(b"GET", f"{names}:s")
        results = await asyncio.gather(wrong, right, return_exceptions=True)
        assert isinstance(results[0], RedisReplyError)
        assert results[1] == b"text"
        assert await line.call(b"PING") == b"PONG"
    finally:
        line.close()


async def test_a_script_unknown_to_redis_is_loaded_once_and_run(names: str) -> None:
    line = RedisLine(URL, client_name=names)
    script = Script(f"return {{KEYS[1], ARGV[1], '{names}'}}")
    try:
        admin = aioredis.from_url(URL)
        try:
            assert (await admin.script_exists(script.sha.decode())) == [False]
        finally:
            await admin.aclose()
        assert await line.run(script, [f"{names}:k"], ["a"]) == [
            f"{names}:k".encode(),
            b"a",
            names.encode(),
        ]
        assert await line.run(script, [f"{names}:k"], [7]) == [
            f"{names}:k".encode(),
            b"7",
            names.encode(),
        ]
    finally:
        line.close()


async def test_a_lost_connection_is_replaced_on_the_next_call(names: str) -> None:
    line = RedisLine(URL, client_name=names)
    try:
        assert await line.call(b"PING") == b"PONG"
        assert await _kill(names) == 1
        await asyncio.sleep(0.1)
        assert await line.call(b"PING") == b"PONG"
        assert await _kill(names) == 1  # one connection again, named
    finally:
        line.close()


async def test_the_url_database_is_selected(names: str) -> None:
    line = RedisLine(URL.rsplit("/", 1)[0] + "/3", client_name=names)
    try:
        assert (await line.call(b"CLIENT", b"INFO")).find(b" db=3 ") > 0
    finally:
        line.close()


async def test_subscriber_receives_and_subscribes_again_after_a_loss(names: str) -> None:
    got: list[tuple[bytes, bytes]] = []
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    subscriber = RedisSubscriber(
        URL,
        on_message=lambda channel, data: got.append((channel, data)),
        on_reconnect=on_reconnect,
        client_name=f"{names}:sub",
    )
    line = RedisLine(URL, client_name=names)
    channel = f"{names}:r:1".encode()
    try:
        assert await subscriber.subscribe(channel, 2.0)
        assert await line.call(b"PUBLISH", channel, b"one") == 1
        await asyncio.sleep(0.1)
        assert got == [(channel, b"one")]

        assert await _kill(f"{names}:sub") == 1
        await asyncio.wait_for(reconnected.wait(), 5.0)
        # Subscribed again before it said so: the next publish reaches it.
        assert await line.call(b"PUBLISH", channel, b"two") == 1
        await asyncio.sleep(0.1)
        assert got == [(channel, b"one"), (channel, b"two")]

        subscriber.unsubscribe(channel)
        await asyncio.sleep(0.1)
        assert await line.call(b"PUBLISH", channel, b"three") == 0
    finally:
        subscriber.close()
        line.close()


async def test_a_refused_argument_leaves_the_line_in_step(names: str) -> None:
    """An argument the packer refuses must not leave a waiter that would take the next
    caller's reply."""
    line = RedisLine(URL, client_name=names)
    try:
        await line.call(b"SET", f"{names}:a", "a")
        with pytest.raises(TypeError):
            await line.call(b"SET", f"{names}:b", None)
        assert await line.call(b"GET", f"{names}:a") == b"a"
    finally:
        line.close()


async def test_subscriber_keeps_trying_after_a_refused_reconnect(
    names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error reply while reconnecting (too many clients, a changed password) is
    retried; the reconnect callback comes once subscribed again."""
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    subscriber = RedisSubscriber(
        URL, on_message=lambda c, d: None, on_reconnect=on_reconnect, client_name=f"{names}:s"
    )
    channel = f"{names}:r:2".encode()
    try:
        assert await subscriber.subscribe(channel, 2.0)
        real_open = subscriber.connector.open
        refusals = [RedisReplyError("ERR max number of clients reached")]

        async def flaky_open(*args: object) -> object:
            if refusals:
                raise refusals.pop()
            return await real_open(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(subscriber.connector, "open", flaky_open)
        assert await _kill(f"{names}:s") == 1
        await asyncio.wait_for(reconnected.wait(), 8.0)
        assert not refusals
        line = RedisLine(URL, client_name=names)
        try:
            assert await line.call(b"PUBLISH", channel, b"x") == 1
        finally:
            line.close()
    finally:
        subscriber.close()
