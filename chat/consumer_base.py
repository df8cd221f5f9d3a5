"""What both websocket consumers share: frame parsing, rate limiting, typed errors, and
in-order, gap-free forwarding of conversation entries.

Rate limiting has two counts. Every frame is counted on its connection (in memory, no
round trip), so a flood on one socket never reaches Redis. Once the connection belongs
to a conversation (caller) or a volunteer (console), the frames that reach it are also
counted in the chat store (``self.rate``), which a reconnect or another server process
does not reset. Over either limit a frame is refused with ``rate_limited`` and changes
nothing; 3× over closes the socket with 4429.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from chat import engine, services
from chat.protocol import (
    CLOSE_RATE_LIMITED,
    RATE_LIMIT,
    ProtocolError,
    RateLimiter,
    Schema,
    error,
    parse,
)
from chat.relay import relay
from chat.services import ChatRefused, RateLimited
from chat.store import Appended, RateWindow
from chat.sweeper import ensure_sweeper_started

#: Frames and layer events that need no ``aclose_old_connections`` thread hop: a relayed
#: message is Redis only, and a routing event reads routing's live state (the one
#: database read it may make, the branch and municipality names, goes through
#: ``database_sync_to_async``, which closes stale connections itself). Everything else
#: (start, end, offers, presence, wrap-up, connect, disconnect) still closes stale
#: connections before and after, as Channels does for every message by default.
#: (Conversation entries and signals do not pass through Channels' dispatch at all: the
#: process's relay hands them to ``relay_event``.)
NO_DB_FRAMES = frozenset({"ping", "message", "typing", "seen"})
NO_DB_EVENTS = frozenset({"websocket.receive", "routing.event"})

#: Frames counted on their connection only: ``ping`` touches nothing shared; the frames
#: that (re)bind a connection are answered, so a caller or volunteer over the limit
#: still gets their conversation back after a reconnect (what they send next is refused
#: until the window ends); and ending a conversation is never refused for speed.
CONNECTION_ONLY_FRAMES = frozenset({"ping", "start", "resume", "sync", "end", "contact.end"})
#: Frames counted by their own store call (the append script): no extra round trip.
COUNTED_IN_APPEND = frozenset({"message"})
STORE_UNCOUNTED = CONNECTION_ONLY_FRAMES | COUNTED_IN_APPEND


class ChatConsumerBase(AsyncWebsocketConsumer):
    """Subclasses set ``schemas`` and implement ``handle(kind, fields)``."""

    schemas: Mapping[str, Schema] = {}
    #: False: everything this socket receives besides its own frames comes from the
    #: process's relay, so it gets no channel-layer channel and reads its frames in a
    #: plain loop (Channels' loop waits on two receivers with a new task per message).
    uses_channel_layer = True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.uses_channel_layer:
            await super().__call__(scope, receive, send)
            return
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        """``AsyncConsumer.dispatch`` without the database clean-up for ``NO_DB_EVENTS``
        (``websocket.receive`` decides per frame kind in ``receive``)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if message["type"] not in NO_DB_EVENTS:
            await aclose_old_connections()
        await handler(message)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.limiter = RateLimiter(window_s=services.rate_window_s())
        #: The store count this connection's frames go to, once it has one.
        self.rate: RateWindow | None = None
        self.delivered: dict[str, int] = {}  # contact id → last seq sent on this socket
        #: One forwarding at a time: the relay's reader and this socket's own frames
        #: (ack, replay) both forward entries.
        self.forwarding = asyncio.Lock()
        self.groups_joined: set[str] = set()
        self.following: set[str] = set()
        #: Marks the entries this socket sends, so the relay does not echo them back.
        self.relay_id = secrets.token_hex(8)
        ensure_sweeper_started()
        engine.ticker_start()
        await super().websocket_connect(message)

    async def send_json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload, ensure_ascii=False, separators=(",", ":")))

    async def join(self, group: str) -> None:
        if group not in self.groups_joined and self.channel_layer is not None:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)

    async def leave(self, group: str) -> None:
        if group in self.groups_joined and self.channel_layer is not None:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)

    async def leave_all(self) -> None:
        for group in list(self.groups_joined):
            await self.leave(group)
        for contact_id in list(self.following):
            await self.unfollow(contact_id)

    async def follow(self, contact_id: str) -> None:
        """Receive the conversation's entries and signals (``relay_event``)."""
        if contact_id not in self.following:
            self.following.add(contact_id)
            await relay().follow(contact_id, self)

    async def unfollow(self, contact_id: str) -> None:
        if contact_id in self.following:
            self.following.discard(contact_id)
            await relay().unfollow(contact_id, self)

    async def relay_event(self, event: dict[str, Any]) -> None:
        """From the process's relay: an entry (not this socket's own) or a signal."""
        kind = event["type"]
        if kind == "chat.entry":
            if event.get("origin") != self.relay_id:
                await self.chat_entry(event)
        elif kind == "chat.signal":
            await self.chat_signal(event)
        elif kind == "routing.event":
            await self.routing_event(event)

    async def relay_missed(self, contact_id: str) -> None:
        """The relay may have lost events: forward what the store has beyond ours."""
        await self.replay(contact_id, self.delivered.get(contact_id, 0))

    async def chat_entry(self, event: dict[str, Any]) -> None:
        await self.deliver(event["contact_id"], event["entry"])

    async def chat_signal(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    async def routing_event(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        rate = self.rate
        limit = rate.limit if rate is not None else RATE_LIMIT
        count = self.limiter.hit(time.monotonic())
        if count > 3 * limit:
            await self.close(code=CLOSE_RATE_LIMITED)
            return
        if count > limit:
            await self.send_json(error("rate_limited", "Too many messages: wait a moment."))
            return
        try:
            kind, fields = parse(text_data if text_data is not None else bytes_data, self.schemas)
        except ProtocolError as refused:
            await self.send_json(error(refused.code, refused.message, refused.ref))
            return
        touches_db = kind not in NO_DB_FRAMES
        if touches_db:
            await aclose_old_connections()
        try:
            if rate is not None and kind not in STORE_UNCOUNTED:
                await services.frame_count(rate=rate)
            await self.handle(kind, fields)
        except RateLimited as refused:
            if refused.close:
                await self.close(code=CLOSE_RATE_LIMITED)
            else:
                await self.send_json(error(refused.code, refused.message, fields.get("id")))
        except ChatRefused as refused:
            await self.send_json(error(refused.code, refused.message, fields.get("id")))
        finally:
            if touches_db:
                await aclose_old_connections()

    async def handle(self, kind: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def entry_frame(self, contact_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        return entry

    async def posted(self, contact_id: str, client_id: str, appended: Appended) -> None:
        """Answer the sender of a message: the stored entry itself (it carries the
        client's ``id`` and its ``seq``) is the acknowledgement, one frame; a retried id
        is answered ``ack`` with ``duplicate: true`` and its original ``seq``. Either
        way the entry reaches this socket once (a gap fill may have sent it already)."""
        if appended.duplicate:
            ack = {"type": "ack", "id": client_id, "seq": appended.seq, "duplicate": True}
            await self.send_json(self.entry_frame(contact_id, ack))
        await self.deliver(contact_id, appended.entry)

    async def deliver(self, contact_id: str, entry: dict[str, Any]) -> None:
        """Forward an entry exactly once and in order; a gap is filled from the store."""
        async with self.forwarding:
            await self._forward(contact_id, entry)

    async def _forward(self, contact_id: str, entry: dict[str, Any]) -> None:
        last = self.delivered.get(contact_id, 0)
        seq = int(entry["seq"])
        if seq <= last:
            return
        batch = [entry]
        if seq > last + 1:
            missing = await services.entries_since(contact_id=contact_id, after=last)
            batch = [e for e in missing if e["seq"] < seq] + [entry]
        for item in batch:
            await self.send_json(self.entry_frame(contact_id, item))
        self.delivered[contact_id] = seq

    async def replay(self, contact_id: str, after: int) -> None:
        """Send everything after ``after`` (what the client says it saw last; a number
        beyond the log is taken as the log's end) that this socket has not been sent yet:
        the relay may have forwarded an entry to it between ``follow`` and this replay."""
        async with self.forwarding:
            seen = min(after, await services.last_seq(contact_id=contact_id))
            self.delivered[contact_id] = max(self.delivered.get(contact_id, 0), seen)
            for item in await services.entries_since(contact_id=contact_id, after=after):
                await self._forward(contact_id, item)
