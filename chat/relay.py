"""The conversation relay: how an entry or a signal reaches every socket of a conversation.

Each server process keeps one map, conversation → the sockets (consumers) in this
process that follow it, and hands each published event straight to those consumers:

* **Redis** (production): the process holds one subscriber connection
  (``listenline.redis_line``), subscribed to
  ``<chat prefix>:r:<contact id>`` for every conversation it has a socket of. The
  append script publishes the stored entry in the same step that stores it, and a
  signal (typing, read receipt) is one script that checks the conversation and
  publishes: one Redis round trip per relayed frame, where the channel layer needed a
  second one (its ``PUBLISH``) and a Fernet round of its own. Message text crosses
  sealed (``chat.store``: AES-GCM under ``CHANNEL_LAYER_KEY``), as it rests.
* **Memory** (the embedded demo, one process): the store hands the event over in
  process.

Delivery is at most once, as with any pub/sub: the consumers number what they forward
and fill a gap from the store (``ChatConsumerBase.deliver``), so a lost event costs
latency, never a message. ``follow`` returns once Redis has confirmed the subscription,
so a consumer that replays the log after following misses nothing in between. When the
subscriber connection is lost, it connects and subscribes again, and once Redis has
confirmed, every follower catches up from the store (``relay_missed``).

Routing's events about one contact (queued, assigned, re-queued) reach the caller's
socket the same way (``forward_contact_event``, a routing hook), so the caller's socket
needs no channel-layer channel at all; the console's routing events about its own
volunteer (offers, presence, assignments) still travel on the channel layer, and branch
and national queue counts come from the process's queue watch (``chat.queue_watch``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, Protocol

from django.conf import settings

from chat import store as stores
from chat.redis import redis_line
from listenline.redis_line import RedisSubscriber

logger = logging.getLogger(__name__)

SUBSCRIBE_WAIT_S = 2.0
CLIENT_NAME = "listenline-chat-relay"


class Follower(Protocol):
    """A consumer that follows conversations (``ChatConsumerBase``)."""

    async def relay_event(self, event: dict[str, Any]) -> None:
        """An entry or signal of a followed conversation (``contact_id`` set)."""

    async def relay_missed(self, contact_id: str) -> None:
        """Events may have been lost: fill in from the store."""


class Relay:
    """Who in this process follows which conversation, and handing events to them."""

    def __init__(self) -> None:
        self.followers: dict[str, set[Follower]] = {}

    async def follow(self, contact_id: str, follower: Follower) -> None:
        followers = self.followers.get(contact_id)
        if followers is None:
            followers = self.followers[contact_id] = set()
            followers.add(follower)
            await self._subscribe(contact_id)
        else:
            followers.add(follower)

    async def unfollow(self, contact_id: str, follower: Follower) -> None:
        followers = self.followers.get(contact_id)
        if followers is None:
            return
        followers.discard(follower)
        if not followers:
            del self.followers[contact_id]
            await self._unsubscribe(contact_id)

    async def dispatch(self, event: dict[str, Any]) -> None:
        """Hand one event to this process's followers of its conversation, in turn (so
        each sees the conversation's events in publish order)."""
        for follower in tuple(self.followers.get(event["contact_id"], ())):
            try:
                await follower.relay_event(event)
            except Exception:
                logger.exception("relaying to a socket failed")  # no ids, no text

    async def publish(self, contact_id: str, event: dict[str, Any]) -> None:
        """Publish an event that is not stored (a routing event about the contact) to
        every process's followers of the conversation."""
        await self.dispatch({**event, "contact_id": contact_id})

    async def _subscribe(self, contact_id: str) -> None:
        pass

    async def _unsubscribe(self, contact_id: str) -> None:
        pass


class RedisRelay(Relay):
    """One subscriber connection per process (and chat prefix); a reader task
    dispatches what it receives, in the order Redis sent it."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.channel_prefix = stores.relay_channel(prefix, "")
        self.subscriber = RedisSubscriber(
            settings.REDIS_URL,
            on_message=self._received,
            on_reconnect=self._catch_up,
            client_name=CLIENT_NAME,
        )
        self.inbox: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None

    async def publish(self, contact_id: str, event: dict[str, Any]) -> None:
        payload = json.dumps(event, separators=(",", ":"))
        await redis_line().call(b"PUBLISH", self.channel_prefix + contact_id, payload)

    async def _subscribe(self, contact_id: str) -> None:
        if self.reader is None or self.reader.done():
            self.reader = asyncio.get_running_loop().create_task(self._read(), name="chat-relay")
        channel = (self.channel_prefix + contact_id).encode()
        if not await self.subscriber.subscribe(channel, SUBSCRIBE_WAIT_S):
            logger.warning("relay subscription not confirmed in time")

    async def _unsubscribe(self, contact_id: str) -> None:
        self.subscriber.unsubscribe((self.channel_prefix + contact_id).encode())

    def _received(self, channel: bytes, data: bytes) -> None:
        self.inbox.put_nowait((channel, data))

    async def _read(self) -> None:
        skip = len(self.channel_prefix)
        while True:
            channel, data = await self.inbox.get()
            try:
                event = json.loads(data)
                event["contact_id"] = channel[skip:].decode()
                entry = event.get("entry")
                if entry is not None:
                    stores.entry_open(entry)
            except (ValueError, TypeError, AttributeError):
                logger.warning("relay: an event could not be read")  # never its text
                continue
            await self.dispatch(event)

    async def _catch_up(self) -> None:
        """After a reconnect (subscribed again, confirmed): what was published
        meanwhile is lost, so every follower fills in from the store."""
        for contact_id, followers in list(self.followers.items()):
            for follower in tuple(followers):
                try:
                    await follower.relay_missed(contact_id)
                except Exception:
                    logger.exception("catching up a socket failed")


_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Relay]] = (
    weakref.WeakKeyDictionary()
)


def relay() -> Relay:
    """This process's relay for the running loop and the configured chat store."""
    store = stores.conversation_store()
    key = getattr(store, "prefix", "") if isinstance(store, stores.RedisConversationStore) else ""
    loop = asyncio.get_running_loop()
    relays = _relays.setdefault(loop, {})
    found = relays.get(key)
    if found is None:
        found = relays[key] = RedisRelay(key) if key else Relay()
    return found


#: Routing events the caller's page acts on (``CallerConsumer.routing_event``).
CONTACT_EVENTS = ("contact.queued", "contact.assigned", "contact.requeued")


async def forward_contact_event(event: Any) -> None:
    """Routing hook (registered in ``ChatConfig.ready``): relay a contact's event to the
    followers of its conversation, in whichever process they are."""
    await relay().publish(
        event.payload["contact_id"],
        {"type": "routing.event", "event": event.type, "payload": event.payload},
    )


def connect() -> None:
    from routing import events

    for event_type in CONTACT_EVENTS:
        events.subscribe(event_type, forward_contact_event)
