"""The rules of a chat conversation. Consumers parse frames and call exactly one of these.

A conversation is the chat side of one routing contact. Its state here is one of
``waiting`` (in the queue), ``active`` (a volunteer has it) or ``ended``. Routing owns the
contact's life; these functions keep the conversation store in step and relay entries
to whoever is connected:

* every entry both sides should see (a message, a volunteer joining, a notice, the end)
  is appended to the conversation log with a sequence number and, in the same store
  step, published to the conversation's relay (``chat.relay``); consumers forward
  entries in sequence order and fill any gap from the store, so a lost relay event
  costs latency, never a message;
* ephemeral signals (typing, read receipts) are published and never stored;
* client frames are counted per conversation (the caller) or per volunteer (the
  console) in the store, so the rate limit holds across reconnects and processes
  (``frame_count``; a message is counted inside its append).

Refusals raise ``ChatRefused`` with a stable code and change nothing.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat import engine
from chat.protocol import RATE_LIMIT, RATE_WINDOW_S
from chat.store import (
    Appended,
    ConversationClosed,
    ConversationNotActive,
    ConversationNotYours,
    RateExceeded,
    RateWindow,
    conversation_store,
    token_hash,
)
from routing.errors import TransitionRefused

CALLER = "caller"
VOLUNTEER = "volunteer"
CALLER_GONE = "caller_gone"  # deadline set name: callers who dropped


class ChatRefused(Exception):
    """A refused request; ``code`` is documented in docs/protocol.md. Nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


class RateLimited(ChatRefused):
    """Over the rate limit: the frame was counted and refused, nothing else changed.
    ``close`` is set when the count is far over (3×): the socket is closed with 4429."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__("rate_limited", "Too many messages: wait a moment.")
        self.count = count
        self.close = count > 3 * limit


@dataclass(frozen=True)
class Conversation:
    contact_id: str
    state: str
    volunteer_id: int | None
    alias: str
    requeued: bool

    @classmethod
    def from_meta(cls, contact_id: str, meta: dict[str, str]) -> Conversation:
        vid = meta.get("volunteer_id") or ""
        return cls(
            contact_id,
            meta.get("state", "waiting"),
            int(vid) if vid else None,
            meta.get("alias", ""),
            meta.get("requeued") == "1",
        )


def caller_grace_s() -> float:
    return float(getattr(settings, "CHAT_CALLER_GRACE_S", 300.0))


def now_ms() -> int:
    return int(time.time() * 1000)


def rate_window_s() -> float:
    return float(getattr(settings, "CHAT_RATE_WINDOW_S", RATE_WINDOW_S))


def caller_rate(*, contact_id: str) -> RateWindow:
    """The count of a conversation's caller: keyed by the contact id (a random id),
    ``RATE_LIMIT`` frames per window whichever socket or process they arrive on."""
    return RateWindow("c", contact_id, RATE_LIMIT, rate_window_s())


def volunteer_rate(*, volunteer_id: int, chat_limit: int) -> RateWindow:
    """The count of a volunteer over all their console tabs: ``RATE_LIMIT`` per chat
    they may hold (read receipts and typing grow with the number of chats)."""
    return RateWindow("v", str(volunteer_id), RATE_LIMIT * max(1, chat_limit), rate_window_s())


async def frame_count(*, rate: RateWindow) -> None:
    """Count one client frame; ``RateLimited`` when it is over the limit (one store
    round trip; nothing but the count changes)."""
    count = await conversation_store().rate_hit(rate=rate)
    if count > rate.limit:
        raise RateLimited(count, rate.limit)


async def _append(
    contact_id: str,
    entry: dict[str, Any],
    client_key: str | None = None,
    require_open: bool = True,
    *,
    require_active: bool = False,
    volunteer_id: int | None = None,
    origin: str | None = None,
    rate: RateWindow | None = None,
) -> Appended:
    try:
        appended = await conversation_store().append(
            contact_id=contact_id,
            client_key=client_key,
            entry=entry,
            require_open=require_open,
            require_active=require_active,
            volunteer_id=volunteer_id,
            rate=rate,
            origin=origin or "",
        )
    except RateExceeded as over:
        assert rate is not None
        raise RateLimited(over.count, rate.limit) from None
    return appended


async def conversation_get(*, contact_id: str) -> Conversation | None:
    meta = await conversation_store().meta_get(contact_id=contact_id)
    return Conversation.from_meta(contact_id, meta) if meta else None


async def entries_since(*, contact_id: str, after: int) -> list[dict[str, Any]]:
    return await conversation_store().since(contact_id=contact_id, after=after)


async def last_seq(*, contact_id: str) -> int:
    return await conversation_store().last_seq(contact_id=contact_id)


# --- the caller ------------------------------------------------------------------------
@database_sync_to_async
def _home_branch(municipality_code: str | None) -> str | None:
    from volunteers.models import Municipality

    if not municipality_code:
        return None
    row = Municipality.objects.filter(code=municipality_code).select_related("branch").first()
    if row is None:
        raise ChatRefused("unknown_municipality", "There is no municipality with this code.")
    return row.branch.slug


async def caller_start(*, municipality_code: str | None) -> tuple[str, Conversation]:
    """Queue a new chat contact; returns the caller's bearer token (shown once, never
    stored: the store keeps its sha256) and the conversation."""
    home = await _home_branch(municipality_code)
    try:
        contact_id = await engine.contact_enqueue(
            channel="chat", home_branch=home, municipality_code=municipality_code
        )
    except TransitionRefused as refused:
        raise ChatRefused(refused.code, refused.message) from None
    token = secrets.token_urlsafe(32)
    await conversation_store().conversation_open(
        contact_id=contact_id,
        token_hash=token_hash(token),
        fields={"state": "waiting", "channel": "chat"},
        overwrite=False,
    )
    conversation = await conversation_get(contact_id=contact_id)
    assert conversation is not None
    return token, conversation


async def caller_resume(*, token: str) -> Conversation:
    """The conversation of a token, or ``bad_token`` if unknown, expired or ended."""
    contact_id = await conversation_store().token_lookup(token_hash=token_hash(token))
    conversation = await conversation_get(contact_id=contact_id) if contact_id else None
    if conversation is None or conversation.state == "ended":
        raise ChatRefused("bad_token", "This conversation has ended or expired.")
    return conversation


async def caller_presence(*, contact_id: str, connected: bool) -> None:
    """A caller who drops has ``CHAT_CALLER_GRACE_S`` to come back (see ``sweep``)."""
    store = conversation_store()
    if connected:
        await store.deadline_clear(name=CALLER_GONE, contact_id=contact_id)
    else:
        await store.deadline_set(
            name=CALLER_GONE, contact_id=contact_id, at=time.time() + caller_grace_s()
        )


async def queue_place(*, contact_id: str) -> engine.Place | None:
    return await engine.queue_position(contact_id=contact_id)


# --- both sides ------------------------------------------------------------------------
async def message_post(
    *,
    contact_id: str,
    sender: str,
    client_id: str,
    text: str,
    volunteer_id: int | None = None,
    origin: str | None = None,
    rate: RateWindow | None = None,
) -> Appended:
    """Store and relay one message, once per client id, in the conversation's order.

    One store round trip counts the frame against ``rate`` (``RateLimited`` over the
    limit), checks the conversation (open, active, the volunteer's own), assigns
    ``seq``, de-duplicates, stores and publishes. ``origin`` (the sender's relay id)
    marks the published entry so the sending socket, which is answered
    directly, skips its own copy."""
    party = CALLER if sender == CALLER else f"v{volunteer_id}"
    entry = {"type": "message", "from": sender, "id": client_id, "text": text, "at": now_ms()}
    try:
        return await _append(
            contact_id,
            entry,
            client_key=f"{party}:{client_id}",
            require_active=True,
            volunteer_id=volunteer_id if sender == VOLUNTEER else None,
            origin=origin,
            rate=rate,
        )
    except ConversationClosed:
        raise ChatRefused("ended", "This conversation has ended.") from None
    except ConversationNotYours:
        raise ChatRefused("not_yours", "This conversation is not yours.") from None
    except ConversationNotActive:
        raise ChatRefused("not_active", "Nobody is in this conversation with you yet.") from None


async def signal_relay(
    *, contact_id: str, sender: str, kind: str, value: Any, volunteer_id: int | None = None
) -> None:
    """Relay a typing indicator (``kind='typing'``) or read receipt (``'seen'``): one
    store call checks the conversation (open; a volunteer's own) and publishes."""
    field = "active" if kind == "typing" else "upto"
    event = {"type": "chat.signal", "kind": kind, "from": sender, field: value}
    try:
        await conversation_store().signal(
            contact_id=contact_id,
            volunteer_id=volunteer_id if sender == VOLUNTEER else None,
            event=event,
        )
    except ConversationClosed:
        raise ChatRefused("ended", "This conversation has ended.") from None
    except ConversationNotYours:
        raise ChatRefused("not_yours", "This conversation is not yours.") from None


def _check_party(conversation: Conversation | None, sender: str, volunteer_id: int | None) -> None:
    if conversation is None or conversation.state == "ended":
        raise ChatRefused("ended", "This conversation has ended.")
    if sender == VOLUNTEER and conversation.volunteer_id != volunteer_id:
        raise ChatRefused("not_yours", "This conversation is not yours.")


async def conversation_end(*, contact_id: str, by: str, volunteer_id: int | None = None) -> bool:
    """End a conversation (idempotent): tell routing, publish the end, delete the text.

    ``by`` is ``caller``, ``volunteer`` or ``timeout`` (the caller did not come back).
    Returns False when it had already ended.
    """
    store = conversation_store()
    conversation = await conversation_get(contact_id=contact_id)
    if conversation is None or conversation.state == "ended":
        return False
    if by == VOLUNTEER:
        _check_party(conversation, VOLUNTEER, volunteer_id)
    try:
        await _append(contact_id, {"type": "ended", "by": by, "at": now_ms()})
    except ConversationClosed:
        return False
    await store.meta_set(contact_id=contact_id, fields={"state": "ended"})
    await store.deadline_clear(name=CALLER_GONE, contact_id=contact_id)
    try:
        if conversation.state == "active" and by != "timeout":
            await engine.contact_end(contact_id=contact_id, by=by)
        else:
            await engine.contact_abandon(contact_id=contact_id)
    except TransitionRefused:
        pass  # routing already moved on (ended elsewhere, re-queued): the text goes anyway
    await store.conversation_delete(contact_id=contact_id)
    return True


# --- the volunteer ---------------------------------------------------------------------
async def volunteer_joined(*, contact_id: str, volunteer_id: int, alias: str) -> Appended:
    """After routing's accept: the conversation becomes active with this volunteer."""
    await conversation_store().conversation_open(
        contact_id=contact_id,
        token_hash=None,
        overwrite=True,
        fields={
            "state": "active",
            "volunteer_id": str(volunteer_id),
            "alias": alias,
            "channel": "chat",
        },
    )
    return await _append(contact_id, {"type": "joined", "alias": alias, "at": now_ms()})


async def volunteer_connection(
    *, contact_ids: list[str], volunteer_id: int, connected: bool
) -> None:
    """Tell the callers of a volunteer's active chats that the connection dropped or is
    back (a notice in the conversation log)."""
    code = "volunteer_back" if connected else "volunteer_dropped"
    for contact_id in contact_ids:
        conversation = await conversation_get(contact_id=contact_id)
        if (
            conversation
            and conversation.state == "active"
            and (conversation.volunteer_id == volunteer_id)
        ):
            try:
                await _append(contact_id, {"type": "notice", "code": code, "at": now_ms()})
            except ConversationClosed:
                continue


async def conversation_requeued(*, contact_id: str) -> None:
    """Routing moved the caller back to the queue (their volunteer did not return):
    the conversation waits again, with a notice. Idempotent per volunteer."""
    conversation = await conversation_get(contact_id=contact_id)
    if conversation is None or conversation.state != "active":
        return
    store = conversation_store()
    await store.meta_set(
        contact_id=contact_id, fields={"state": "waiting", "requeued": "1", "volunteer_id": ""}
    )
    key = f"requeue:{conversation.volunteer_id}"
    try:
        await _append(
            contact_id, {"type": "notice", "code": "transferring", "at": now_ms()}, client_key=key
        )
    except ConversationClosed:
        return
