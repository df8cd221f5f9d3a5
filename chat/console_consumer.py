"""The volunteer console's websocket (``/ws/console/``): thin, validate → one service → send.

Authenticated by the session cookie (``AuthMiddlewareStack``); an account without an
active volunteer profile is closed with 4403, an anonymous one with 4401. The volunteer's
own routing events arrive on ``volunteer.<id>``; branch and national queue counts from
the process's queue watch (``chat.queue_watch``); conversation entries and signals of
each active chat from the process's relay (``chat.relay``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from chat import desk as desks
from chat import engine, services
from chat.consumer_base import ChatConsumerBase
from chat.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, CONSOLE_SCHEMAS
from chat.queue_watch import watch_desk
from chat.services import VOLUNTEER

ROUTING_FORWARD = {"offer.made", "contact.assigned", "contact.ended"}


class ConsoleConsumer(ChatConsumerBase):
    schemas = CONSOLE_SCHEMAS

    async def connect(self) -> None:
        self.desk: desks.Desk | None = None
        self.queue_pending = False
        self.queue_sent: dict[str, Any] | None = None
        self.queue_read_at = 0.0
        await self.accept()
        user = self.scope.get("user")
        if not getattr(user, "is_authenticated", False):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.desk = await desks.desk_for_user(user)
        if self.desk is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        vid = self.desk.volunteer_id
        self.rate = services.volunteer_rate(volunteer_id=vid, chat_limit=self.desk.chat_limit)
        await self.join(f"volunteer.{vid}")
        # Branch and national counts come from the process's queue watch: one read per
        # branch for all of this process's consoles, not one per console.
        watch_desk(self, self.desk.branch_slug)
        if await engine.volunteer_reconnected(volunteer_id=vid):
            await services.volunteer_connection(
                contact_ids=await self._chat_ids(), volunteer_id=vid, connected=True
            )

    async def disconnect(self, code: int) -> None:
        watch_desk(self, None)
        if self.desk is not None:
            vid = self.desk.volunteer_id
            chats = await self._chat_ids()
            await engine.volunteer_disconnected(volunteer_id=vid)
            await services.volunteer_connection(
                contact_ids=chats, volunteer_id=vid, connected=False
            )
        await self.leave_all()

    async def _chat_ids(self) -> list[str]:
        assert self.desk is not None
        state = await desks.desk_state(desk=self.desk)
        return [
            c["contact_id"]
            for c in state["contacts"]
            if c["channel"] == "chat" and c["state"] == "active"
        ]

    def entry_frame(self, contact_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "contact_id": contact_id}

    async def handle(self, kind: str, fields: dict[str, Any]) -> None:
        desk = self.desk
        if desk is None:
            return
        cid = fields.get("contact_id", "")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "sync":
            await self._resync(fields.get("last_seq", {}))
        elif kind == "presence":
            await desks.presence_set(desk=desk, channel=fields["channel"], state=fields["state"])
        elif kind == "offer.accept":
            view = await desks.offer_accept(desk=desk, contact_id=cid)
            await self._show(view)
        elif kind == "offer.decline":
            await desks.offer_decline(desk=desk, contact_id=cid)
            await self.send_json(
                {"type": "offer.withdrawn", "contact_id": cid, "reason": "declined"}
            )
        elif kind == "message":
            appended = await services.message_post(
                contact_id=cid,
                sender=VOLUNTEER,
                volunteer_id=desk.volunteer_id,
                client_id=fields["id"],
                text=fields["text"],
                origin=self.relay_id,
                rate=self.rate,
            )
            await self.posted(cid, fields["id"], appended)
        elif kind in ("typing", "seen"):
            value = fields["active"] if kind == "typing" else fields["upto"]
            await services.signal_relay(
                contact_id=cid,
                sender=VOLUNTEER,
                kind=kind,
                value=value,
                volunteer_id=desk.volunteer_id,
            )
        elif kind == "contact.end":
            await desks.contact_end(desk=desk, contact_id=cid)
        elif kind == "contact.handover":
            await desks.contact_handover(desk=desk, contact_id=cid)
            await self.send_json({"type": "handover.started", "contact_id": cid})
        elif kind == "wrapup":
            answers = {k: v for k, v in fields.items() if k != "contact_id"}
            await desks.wrapup_save(desk=desk, contact_id=cid, fields=answers)
            await self.unfollow(cid)
            self.delivered.pop(cid, None)
            await self.send_json({"type": "wrapup.saved", "contact_id": cid})

    async def _resync(self, last_seq: dict[str, int]) -> None:
        assert self.desk is not None
        state = await desks.desk_state(desk=self.desk)
        await self.send_json(
            {
                "type": "state",
                "alias": self.desk.alias,
                "branch": self.desk.branch_name,
                "chat_limit": self.desk.chat_limit,
                "channels": list(self.desk.channels),
                **state,
            }
        )
        for view in state["contacts"]:
            if view["channel"] == "chat" and view["state"] == "active":
                await self.follow(view["contact_id"])
                await self.replay(view["contact_id"], last_seq.get(view["contact_id"], 0))
        await self._queue_now()

    async def _show(self, view: dict[str, Any]) -> None:
        """Send a contact's view; join its conversation while it is an active chat."""
        frame_type = "offer" if view["state"] == "offered" else "contact"
        await self.send_json({"type": frame_type, **view})
        if view["channel"] == "chat" and view["state"] == "active":
            cid = view["contact_id"]
            await self.follow(cid)
            await self.replay(cid, self.delivered.get(cid, 0))

    async def _queue_now(self) -> None:
        assert self.desk is not None
        self.queue_pending = False
        self.queue_sent = None
        read_at = asyncio.get_running_loop().time()
        await self.queue_counts_changed(await desks.queue_counts(desk=self.desk), read_at)

    async def queue_counts_changed(self, counts: dict[str, Any], read_at: float) -> None:
        """From the process's queue watch (or ``_queue_now``): send only a change, and
        never counts read before the ones already sent."""
        if read_at < self.queue_read_at:
            return
        self.queue_read_at = read_at
        if counts != self.queue_sent:
            self.queue_sent = counts
            await self.send_json({"type": "queue", **counts})

    async def _queue_soon(self) -> None:
        """Queue counts at most once a second however many changes arrive."""
        if self.queue_pending:
            return
        self.queue_pending = True
        await asyncio.sleep(1.0)
        await self._queue_now()

    # --- relayed conversation events and channel-layer group handlers -------------------
    async def chat_signal(self, event: dict[str, Any]) -> None:
        if event["from"] == VOLUNTEER:
            return
        frame = {
            "type": "typing" if event["kind"] == "typing" else "receipt",
            "contact_id": event["contact_id"],
        }
        frame.update(
            {"active": event["active"]} if event["kind"] == "typing" else {"upto": event["upto"]}
        )
        await self.send_json(frame)

    async def routing_event(self, event: dict[str, Any]) -> None:
        assert self.desk is not None
        kind, payload = event["event"], event["payload"]
        mine = payload.get("volunteer_id") == str(self.desk.volunteer_id)
        if kind in ROUTING_FORWARD and mine:
            contact = await engine.contact_get(contact_id=payload["contact_id"])
            if contact is not None:
                await self._show(await desks.contact_view(contact))
        elif kind == "offer.withdrawn" and mine:
            await self.send_json(
                {
                    "type": "offer.withdrawn",
                    "contact_id": payload["contact_id"],
                    "reason": payload["reason"],
                }
            )
        elif kind == "presence.changed" and mine:
            await self.send_json(
                {"type": "presence", "channel": payload["channel"], "state": payload["state"]}
            )
        if mine and kind in ("presence.changed", "contact.assigned", "contact.ended"):
            # Our own change moves the counts; everyone's reach us through the queue watch.
            asyncio.get_running_loop().create_task(self._queue_soon())
