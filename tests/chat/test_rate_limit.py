"""The rate limit counts per conversation (caller) and per volunteer (console) in the
store, so a reconnect does not reset it; a refusal changes nothing; the count is a bare
number under the conversation or volunteer id and is gone when its window ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from chat.protocol import RATE_LIMIT
from chat.services import volunteer_rate
from chat.store import (
    ConversationClosed,
    MemoryConversationStore,
    RateExceeded,
    RateWindow,
    conversation_store,
)
from tests.chat.conftest import Client_, caller_connect, console_connect, conversation, on_duty

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _acked(client: Client_, n: int, prefix: str, **fields: Any) -> None:
    """Send ``n`` messages and wait for each one's entry (its acknowledgement)."""
    for i in range(n):
        await client.send(type="message", id=f"{prefix}{i}", text=f"bericht {i}", **fields)
    for i in range(n):
        await client.expect("message", id=f"{prefix}{i}")


async def _resumed(token: str, cid: str) -> Client_:
    again = await caller_connect()
    await again.send(
        type="resume", token=token, last_seq=await conversation_store().last_seq(contact_id=cid)
    )
    assert (await again.expect("session"))["state"] == "active"
    return again


async def _redis() -> aioredis.Redis:
    return aioredis.from_url(settings.REDIS_URL)


async def test_a_reconnect_does_not_reset_the_callers_count(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, token, cid = await conversation(console)
    # 'start' counts on the connection only: 19 messages fill this socket's 20 frames.
    await _acked(caller, RATE_LIMIT - 1, "a")
    await caller.close()

    again = await _resumed(token, cid)  # 'resume' is answered although the count is high
    await again.send(type="message", id="last", text="nog eentje")
    await again.expect("message", id="last")  # the conversation's 20th frame
    before = await conversation_store().last_seq(contact_id=cid)
    await again.send(type="message", id="over", text="te veel")
    refused = await again.expect("error")
    assert refused["code"] == "rate_limited" and refused["ref"] == "over"
    await again.send(type="typing", active=True)
    assert (await again.expect("error"))["code"] == "rate_limited"

    # Nothing changed: not stored, not relayed, not even remembered as a client id.
    assert await conversation_store().last_seq(contact_id=cid) == before
    assert all(
        e.get("id") != "over" for e in await conversation_store().since(contact_id=cid, after=0)
    )
    seen = []
    while not await console.nothing(0.3):
        seen.append(await console.next())
    assert all(f.get("id") != "over" and f["type"] != "typing" for f in seen), seen
    client = await _redis()
    assert int(await client.get(f"{settings.CHAT_REDIS_PREFIX}:c:{{{cid}}}:rate")) == 22
    await client.aclose()

    # Ending is never refused for speed.
    await again.send(type="end")
    assert (await again.expect("ended"))["by"] == "caller"
    await again.close()
    await console.close()


async def test_another_conversation_keeps_its_own_count(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")  # chat limit 2: both chats go to Anna
    await on_duty(console)
    first, token, first_id = await conversation(console)
    await _acked(first, RATE_LIMIT - 1, "a")
    await first.close()
    first = await _resumed(token, first_id)
    await _acked(first, 1, "b")
    await first.send(type="message", id="over", text="te veel")
    assert (await first.expect("error"))["code"] == "rate_limited"

    second, _token, second_id = await conversation(console)
    assert second_id != first_id
    await _acked(second, 3, "c")
    got = await console.expect("message", contact_id=second_id, id="c2")
    assert got["text"] == "bericht 2"
    for peer in (first, second, console):
        await peer.close()


async def test_the_volunteers_count_spans_their_connections(chat_env: Any, anna: Any) -> None:
    limit = volunteer_rate(volunteer_id=anna.pk, chat_limit=anna.chat_limit).limit
    assert limit == RATE_LIMIT * anna.chat_limit
    console = await console_connect("anna")  # 'sync': connection only
    await on_duty(console)  # counted: 1
    caller, _token, cid = await conversation(console)  # 'offer.accept': 2
    for _ in range(limit - 3):  # fills the connection's budget (sync + 39 = 40)
        await console.send(type="typing", contact_id=cid, active=True)
    await console.send(type="ping")  # the 41st frame on this socket: refused here
    assert (await console.expect("error"))["code"] == "rate_limited"
    await console.close()

    back = await console_connect("anna")  # 'sync' is answered: the console gets its state
    await back.send(type="typing", contact_id=cid, active=False)  # the volunteer's 40th
    await back.send(type="message", contact_id=cid, id="v-over", text="te veel")
    refused = await back.expect("error")
    assert refused["code"] == "rate_limited" and refused["ref"] == "v-over"
    assert not any(
        f.get("id") == "v-over" for f in await conversation_store().since(contact_id=cid, after=0)
    )
    frames = []
    while not await caller.nothing(0.3):
        frames.append(await caller.next())
    assert all(f.get("id") != "v-over" for f in frames)
    await back.close()
    await caller.close()


async def test_counts_expire_with_their_window(chat_env: Any, anna: Any, settings: Any) -> None:
    settings.CHAT_RATE_WINDOW_S = 2.0
    console = await console_connect("anna")
    await on_duty(console)
    caller, token, cid = await conversation(console)
    await _acked(caller, RATE_LIMIT - 1, "a")
    await caller.close()
    again = await _resumed(token, cid)
    await _acked(again, 1, "b")
    await again.send(type="message", id="over", text="te veel")
    if (await again.expect("error"))["code"] != "rate_limited":
        pytest.skip("the machine took longer than the 2 s window to send 21 messages")

    prefix = settings.CHAT_REDIS_PREFIX
    rate_keys = [f"{prefix}:c:{{{cid}}}:rate", f"{prefix}:v:{anna.pk}:rate"]
    client = await _redis()
    for key in rate_keys:
        ttl = await client.pttl(key)
        assert 0 < ttl <= 2000, (key, ttl)
        assert (await client.get(key)).isdigit()  # a bare count: nothing else is kept
    # No chat key lives without an expiry (-1); the deadline sets hold only contact ids.
    async for key in client.scan_iter(match=f"{prefix}:*"):
        assert await client.pttl(key) != -1 or await client.type(key) == b"zset", key

    await asyncio.sleep(2.3)
    assert await client.exists(*rate_keys) == 0
    await again.send(type="message", id="later", text="nu weer")
    assert (await again.expect("message", id="later"))["text"] == "nu weer"
    await client.aclose()
    await again.close()
    await console.close()


async def test_memory_store_counts_and_forgets_the_same_way() -> None:
    """The embedded demo's store: a fixed window, a refusal appends nothing."""
    store = MemoryConversationStore()
    rate = RateWindow("c", "contact-1", 2, 0.2)
    await store.conversation_open(
        contact_id="contact-1", token_hash=None, fields={"state": "active"}
    )
    entry = {"type": "message", "from": "caller", "id": "m", "text": "hoi", "at": 0}
    assert (await store.append(contact_id="contact-1", client_key="k1", entry=entry, rate=rate)).seq
    assert await store.rate_hit(rate=rate) == 2
    with pytest.raises(RateExceeded) as over:
        await store.append(contact_id="contact-1", client_key="k2", entry=entry, rate=rate)
    assert over.value.count == 3
    assert await store.last_seq(contact_id="contact-1") == 1
    other = RateWindow("v", "7", 2, 0.2)
    assert await store.rate_hit(rate=other) == 1  # another scope keeps its own count
    await asyncio.sleep(0.25)
    assert await store.rate_hit(rate=rate) == 1  # the window ended: a fresh count
    await store.conversation_delete(contact_id="contact-1")
    assert ("c", "contact-1") not in store._rates
    with pytest.raises(ConversationClosed):
        await store.append(contact_id="contact-1", client_key="k3", entry=entry)
