"""The conversation relay: one store step stores and publishes, the subscriber survives
a lost connection without losing or repeating an entry, refusals publish nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from chat import relay as relays
from chat.services import ChatRefused, signal_relay
from chat.store import conversation_store, relay_channel
from tests.chat.conftest import console_connect, conversation, on_duty

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _kill_relay_connections() -> int:
    client = aioredis.from_url(settings.REDIS_URL)
    try:
        killed = 0
        for info in await client.client_list(_type="pubsub"):
            if info.get("name") == relays.CLIENT_NAME:
                await client.client_kill_filter(_id=info["id"])
                killed += 1
        return killed
    finally:
        await client.aclose()


async def test_entries_arrive_once_and_in_order_across_a_lost_subscriber(
    chat_env: Any, anna: Any
) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    await console.send(type="message", contact_id=cid, id="v0", text="voor")
    await caller.expect("message", seq=2)

    assert await _kill_relay_connections() >= 1
    for n in range(1, 4):
        await console.send(type="message", contact_id=cid, id=f"v{n}", text=f"na {n}")
        await console.expect("message", id=f"v{n}")

    seen = [(await caller.expect("message", wait=8.0))["seq"] for _ in range(3)]
    assert seen == [3, 4, 5]
    assert await caller.nothing(0.5)
    # The relay follows the conversation again: a new entry arrives without a gap fill.
    await console.send(type="message", contact_id=cid, id="v4", text="weer")
    assert (await caller.expect("message"))["seq"] == 6
    await caller.close()
    await console.close()


async def test_refused_message_and_signal_publish_nothing(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    store = conversation_store()
    client = aioredis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    await pubsub.subscribe(relay_channel(store.prefix, cid))  # type: ignore[attr-defined]
    assert (await pubsub.get_message(timeout=2.0))["type"] == "subscribe"  # type: ignore[index]
    try:
        await console.send(type="typing", contact_id=cid, active=True)  # hers: published
        await caller.expect("typing", active=True)
        # Another volunteer's id: refused by the store, nothing published.
        with pytest.raises(ChatRefused) as refused:
            await signal_relay(
                contact_id=cid, sender="volunteer", kind="typing", value=True, volunteer_id=999999
            )
        assert refused.value.code == "not_yours"
        first = await pubsub.get_message(timeout=1.0)  # the accepted typing signal
        assert first is not None and b'"active":true' in first["data"]
        assert await pubsub.get_message(timeout=0.5) is None
    finally:
        await pubsub.aclose()
        await client.aclose()
    await caller.close()
    await console.close()


async def test_unfollowed_conversation_is_unsubscribed(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    relay = relays.relay()
    assert cid in relay.followers
    await caller.close()
    await console.close()
    for _ in range(50):
        if cid not in relay.followers:
            break
        await asyncio.sleep(0.05)
    assert cid not in relay.followers


async def test_followers_catch_up_from_the_store_after_a_reconnect(
    chat_env: Any, anna: Any
) -> None:
    """What was published while the subscription was gone arrives through the catch-up
    that follows a reconnect, once and in order."""
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    relay = relays.relay()
    assert isinstance(relay, relays.RedisRelay)
    channel = relay.channel_prefix + cid
    relay.subscriber.unsubscribe(channel.encode())  # this process misses what comes next
    await asyncio.sleep(0.2)
    for n in (1, 2):
        await console.send(type="message", contact_id=cid, id=f"m{n}", text=f"weg {n}")
        await console.expect("message", id=f"m{n}")
    assert await caller.nothing(0.5), await caller.next()
    assert await relay.subscriber.subscribe(channel.encode(), 2.0)
    await relay._catch_up()  # what the subscriber calls after reconnecting
    seen = [(await caller.expect("message"))["seq"] for _ in range(2)]
    assert seen == [2, 3]
    assert await caller.nothing(0.5)
    await caller.close()
    await console.close()


async def test_replay_after_a_relayed_entry_sends_nothing_twice(chat_env: Any) -> None:
    """The relay may forward an entry between ``follow`` and the replay that follows it:
    the replay must not send it again (it used to reset the socket's position)."""
    from chat.consumer_base import ChatConsumerBase

    store = conversation_store()
    cid = "f" * 32
    await store.conversation_open(contact_id=cid, token_hash=None, fields={"state": "active"})
    first = await store.append(contact_id=cid, client_key=None, entry={"type": "joined"})
    await store.append(contact_id=cid, client_key=None, entry={"type": "notice", "code": "x"})

    class Socket(ChatConsumerBase):
        def __init__(self) -> None:
            self.delivered = {}
            self.forwarding = asyncio.Lock()
            self.sent: list[dict[str, Any]] = []

        async def send_json(self, payload: dict[str, Any]) -> None:
            self.sent.append(payload)

    socket = Socket()
    await socket.deliver(cid, first.entry)  # the relay was first
    await socket.replay(cid, 0)  # the client saw nothing before this socket
    assert [f["seq"] for f in socket.sent] == [1, 2]
    await store.conversation_delete(contact_id=cid)


async def test_embedded_demo_store_relays_in_process(
    chat_env: Any, anna: Any, settings: Any
) -> None:
    """The demo's memory store hands entries, signals and contact events to the
    process's relay: a whole conversation without Redis in the chat's path."""
    settings.CHAT_STORE = "memory"
    assert type(relays.relay()) is relays.Relay
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    await caller.send(type="message", id="c1", text="hallo")
    assert (await console.expect("message", contact_id=cid))["text"] == "hallo"
    await console.send(type="typing", contact_id=cid, active=True)
    await caller.expect("typing", active=True)
    await console.send(type="message", contact_id=cid, id="v1", text="dag")
    assert (await caller.expect("message"))["seq"] == 3
    await caller.send(type="end")
    await caller.expect("ended")
    await caller.close()
    await console.close()


def test_text_sealed_under_another_key_opens_empty(settings: Any) -> None:
    from chat.store import entry_open, entry_seal

    sealed = entry_seal({"type": "message", "text": "geheim"})
    assert "text" not in sealed and "geheim" not in str(sealed)
    assert entry_open(dict(sealed))["text"] == "geheim"
    settings.CHANNEL_LAYER_KEY = "another key"
    assert entry_open(dict(sealed)) == {"type": "message", "text": ""}
