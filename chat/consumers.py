"""The caller's websocket (``/ws/chat/``): thin, validate → one service → send.

The token arrives in the first frame (``start`` answers with a new one, ``resume``
presents it), never in the URL. Everything else it receives comes from the process's
relay (``chat.relay``): conversation entries and signals, and routing's events about its
contact. Those handlers only forward, except ``contact.requeued``, which asks the
service to record the transfer in the log.
"""

from __future__ import annotations

from typing import Any

from chat import engine, services
from chat.consumer_base import ChatConsumerBase
from chat.protocol import CALLER_SCHEMAS, CLOSE_ENDED
from chat.queue_watch import watch_queue
from chat.services import CALLER, ChatRefused, Conversation


class CallerConsumer(ChatConsumerBase):
    schemas = CALLER_SCHEMAS
    uses_channel_layer = False  # entries, signals and its contact's events: the relay

    async def connect(self) -> None:
        self.contact_id: str | None = None
        self.ended = False
        self.queue_sent: tuple[int, int | None] | None = None  # last place sent
        await self.accept()

    async def disconnect(self, code: int) -> None:
        watch_queue(self, None)
        if self.contact_id and not self.ended:
            await services.caller_presence(contact_id=self.contact_id, connected=False)
        await self.leave_all()

    async def _bind(self, conversation: Conversation, *, after: int) -> None:
        self.contact_id = conversation.contact_id
        self.rate = services.caller_rate(contact_id=self.contact_id)
        await self.follow(self.contact_id)
        await services.caller_presence(contact_id=self.contact_id, connected=True)
        await self.replay(self.contact_id, after)

    async def handle(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return
        if kind in ("start", "resume"):
            if self.contact_id is not None:
                raise ChatRefused("already_started", "This connection already has a conversation.")
            if kind == "start":
                token, conversation = await services.caller_start(
                    municipality_code=fields.get("municipality")
                )
                await self.send_json(self._session(conversation, token))
                await self._bind(conversation, after=0)
            else:
                conversation = await services.caller_resume(token=fields["token"])
                await self.send_json(self._session(conversation))
                await self._bind(conversation, after=fields["last_seq"])
            await self.queue_refresh(force=True)
            return
        if self.contact_id is None:
            raise ChatRefused("no_conversation", "Send 'start' or 'resume' first.")
        cid = self.contact_id
        if kind == "message":
            appended = await services.message_post(
                contact_id=cid,
                sender=CALLER,
                client_id=fields["id"],
                text=fields["text"],
                origin=self.relay_id,
                rate=self.rate,
            )
            await self.posted(cid, fields["id"], appended)
        elif kind in ("typing", "seen"):
            value = fields["active"] if kind == "typing" else fields["upto"]
            await services.signal_relay(contact_id=cid, sender=CALLER, kind=kind, value=value)
        elif kind == "end":
            await services.conversation_end(contact_id=cid, by=CALLER)

    @staticmethod
    def _session(conversation: Conversation, token: str | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "session",
            "state": conversation.state,
            "alias": conversation.alias,
        }
        if token:
            frame["token"] = token
        return frame

    async def queue_refresh(self, *, force: bool = False) -> None:
        """Read the caller's place while waiting; register for live updates. Sent when it
        changed, or always with ``force`` (after a ``session`` frame)."""
        if self.contact_id is None or self.ended:
            return
        place = await services.queue_place(contact_id=self.contact_id)
        await self.queue_place_changed(place, force=force)

    async def queue_place_changed(self, place: engine.Place | None, *, force: bool = False) -> None:
        """Also called by the process's queue watcher with a batched read's answer."""
        if self.contact_id is None or self.ended:
            return
        watch_queue(self, self.contact_id if place else None)
        if place is None:
            self.queue_sent = None
            return
        current = (place.position, place.estimate_s)
        if force or current != self.queue_sent:
            self.queue_sent = current
            await self.send_json(
                {"type": "queue", "position": place.position, "estimate_s": place.estimate_s}
            )

    # --- relayed conversation events and channel-layer group handlers -------------------
    async def chat_entry(self, event: dict[str, Any]) -> None:
        entry = event["entry"]
        await self.deliver(event["contact_id"], entry)
        if entry["type"] == "ended":
            self.ended = True
            watch_queue(self, None)
            await self.close(code=CLOSE_ENDED)
        elif entry["type"] == "joined":
            watch_queue(self, None)

    async def chat_signal(self, event: dict[str, Any]) -> None:
        if event["from"] == CALLER:
            return
        if event["kind"] == "typing":
            await self.send_json({"type": "typing", "active": event["active"]})
        else:
            await self.send_json({"type": "receipt", "upto": event["upto"]})

    async def routing_event(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "contact.requeued" and self.contact_id:
            await services.conversation_requeued(contact_id=self.contact_id)
            await self.send_json(
                {"type": "session", "state": "waiting", "alias": "", "requeued": True}
            )
        if kind in ("contact.queued", "contact.requeued", "contact.assigned"):
            await self.queue_refresh(force=kind == "contact.requeued")
