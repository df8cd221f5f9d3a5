"""The volunteer's desk: the rules behind each console action.

What a volunteer may know of a contact is decided here, once (``contact_view``):
channel, home branch and municipality names, time waited, duration, state. Never an
identifier of the caller. Phone contacts have no conversation store; their ``end`` and
handover go to ``telephony.services`` when that app provides them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async

from chat import engine, services
from chat.services import ChatRefused
from registrations.services import (
    RegistrationRefused,
    registration_create,
    registration_link,
)
from routing.errors import TransitionRefused


@dataclass(frozen=True)
class Desk:
    """The volunteer behind a console connection (read once on connect)."""

    volunteer_id: int
    alias: str
    branch_id: int
    branch_slug: str
    branch_name: str
    chat_limit: int
    channels: tuple[str, ...]


@database_sync_to_async
def desk_for_user(user: Any) -> Desk | None:
    from volunteers.models import Volunteer

    if not getattr(user, "is_authenticated", False):
        return None
    row = Volunteer.objects.select_related("branch").filter(user=user, is_active=True).first()
    if row is None:
        return None
    return Desk(
        row.pk,
        row.alias,
        row.branch_id,
        row.branch.slug,
        row.branch.name,
        int(row.chat_limit),
        tuple(c for c in row.channels if c in ("phone", "chat")),
    )


_names: dict[str, dict[str, str]] = {}


@database_sync_to_async
def _load_names() -> dict[str, dict[str, str]]:
    from volunteers.models import Branch, Municipality

    return {
        "branch": dict(Branch.objects.values_list("slug", "name")),
        "municipality": dict(Municipality.objects.values_list("code", "name")),
    }


async def _name(kind: str, key: str) -> str:
    global _names
    if not key or key == "*":
        return ""
    if key not in _names.get(kind, {}):
        _names = await _load_names()
    return _names.get(kind, {}).get(key, "")


def _talked_s(contact: Any, now: float) -> int:
    """Seconds since this volunteer accepted: so far (active) or in all (wrap-up)."""
    answered = float(contact.answered_at or 0)
    if not answered:
        return 0
    if contact.state == "active":
        return max(0, round(now - answered))
    ended = float(getattr(contact, "ended_at", 0) or 0)
    if contact.state == "wrap_up" and ended:
        return max(0, round(ended - answered))
    return 0


async def contact_view(contact: Any) -> dict[str, Any]:
    """What the console shows of a routing contact: nothing that identifies the caller.

    ``waited_s`` and ``talked_s`` are durations as of now (not clock times), so the
    console counts on from them with its own clock whatever the clocks disagree on."""
    now = time.time()
    answered = float(contact.answered_at or 0)
    enqueued = float(contact.enqueued_at or now)
    return {
        "contact_id": contact.contact_id,
        "channel": contact.channel,
        "state": contact.state,
        "home_branch": await _name("branch", contact.home),
        "municipality": await _name("municipality", contact.municipality),
        "waited_s": round((answered or now) - enqueued),
        "talked_s": _talked_s(contact, now),
        "offer_expires_in_s": max(0, round(float(contact.offer_expires_at or 0) - now))
        if contact.state == "offered"
        else 0,
    }


def _refused(refused: TransitionRefused) -> ChatRefused:
    return ChatRefused(refused.code, refused.message)


async def _own_contact(desk: Desk, contact_id: str, states: tuple[str, ...]) -> Any:
    contact = await engine.contact_get(contact_id=contact_id)
    if contact is None:
        raise ChatRefused("unknown_contact", "There is no live contact with this id.")
    mine = contact.volunteer == str(desk.volunteer_id) or (
        contact.state == "offered" and contact.offered_to == str(desk.volunteer_id)
    )
    if not mine:
        raise ChatRefused("not_yours", "This contact is not yours.")
    if contact.state not in states:
        raise ChatRefused("wrong_state", f"The contact is {contact.state}.")
    return contact


async def presence_set(*, desk: Desk, channel: str, state: str) -> None:
    try:
        await engine.volunteer_presence_set(
            volunteer_id=desk.volunteer_id, channel=channel, state=state
        )
    except TransitionRefused as refused:
        raise _refused(refused) from None


async def offer_accept(*, desk: Desk, contact_id: str) -> dict[str, Any]:
    try:
        contact = await engine.offer_accept(contact_id=contact_id, volunteer_id=desk.volunteer_id)
    except TransitionRefused as refused:
        raise _refused(refused) from None
    if contact.channel == "chat":
        await services.volunteer_joined(
            contact_id=contact_id, volunteer_id=desk.volunteer_id, alias=desk.alias
        )
    return await contact_view(contact)


async def offer_decline(*, desk: Desk, contact_id: str) -> None:
    try:
        await engine.offer_decline(contact_id=contact_id, volunteer_id=desk.volunteer_id)
    except TransitionRefused as refused:
        raise _refused(refused) from None


async def contact_end(*, desk: Desk, contact_id: str) -> None:
    """End a chat (text deleted) or a phone call (through telephony)."""
    contact = await _own_contact(desk, contact_id, ("active",))
    if contact.channel == "chat":
        await services.conversation_end(
            contact_id=contact_id, by="volunteer", volunteer_id=desk.volunteer_id
        )
        return
    call_end = engine.telephony_service("call_end")
    try:
        if call_end is not None:
            await call_end(contact_id=contact_id, volunteer_id=desk.volunteer_id)
        else:
            await engine.contact_end(contact_id=contact_id, by="volunteer")
    except TransitionRefused as refused:
        raise _refused(refused) from None


async def contact_handover(*, desk: Desk, contact_id: str) -> None:
    """Warm handover of a phone call to 113 (telephony adds 113 to the conference)."""
    contact = await _own_contact(desk, contact_id, ("active",))
    if contact.channel != "phone":
        raise ChatRefused("phone_only", "Only a phone call can be handed over.")
    call_handover = engine.telephony_service("call_handover")
    if call_handover is None:
        raise ChatRefused("unavailable", "Handover is not available on this server.")
    await call_handover(contact_id=contact_id, volunteer_id=desk.volunteer_id)


async def wrapup_save(*, desk: Desk, contact_id: str, fields: dict[str, Any]) -> None:
    """Save the registration, then close the contact in routing (which writes the trail
    row and offers the volunteer the next contact), then link the two."""
    contact = await _own_contact(desk, contact_id, ("wrap_up",))
    try:
        registration = await database_sync_to_async(registration_create)(
            channel=contact.channel, branch_id=desk.branch_id, **fields
        )
    except RegistrationRefused as refused:
        raise ChatRefused(refused.code, refused.message) from None
    try:
        final = await engine.contact_wrapup_done(
            contact_id=contact_id, volunteer_id=desk.volunteer_id
        )
    except TransitionRefused as refused:
        await database_sync_to_async(registration.delete)()
        raise _refused(refused) from None
    record_id = getattr(final, "record_id", None)
    if record_id is not None:
        await database_sync_to_async(registration_link)(
            registration=registration, contact_record_id=record_id
        )


async def desk_state(*, desk: Desk) -> dict[str, Any]:
    """Presence per channel and every contact offered to, active with or in wrap-up with
    this volunteer (routing's live state is the truth)."""
    state = await engine.volunteer_get(volunteer_id=desk.volunteer_id)
    presence = {ch: "off_duty" for ch in desk.channels}
    contacts: list[dict[str, Any]] = []
    if state is not None:
        presence.update({ch: p for ch, p in state.presence.items() if ch in presence})
        for contact_id in state.contacts:
            contact = await engine.contact_get(contact_id=contact_id)
            if contact is not None:
                contacts.append(await contact_view(contact))
    return {"presence": presence, "contacts": contacts}


def queue_frame(branch: Any, national: Any) -> dict[str, Any]:
    """The console's ``queue`` counts from two routing snapshots."""

    def counts(snapshot: Any) -> dict[str, Any]:
        return {
            "waiting": snapshot.waiting,
            "longest_wait_s": round(snapshot.longest_wait_s),
            "on_duty": snapshot.on_duty,
            "busy": snapshot.busy,
        }

    return {"branch": counts(branch), "national": counts(national)}


async def queue_counts(*, desk: Desk) -> dict[str, Any]:
    branch = await engine.branch_snapshot(branch=desk.branch_slug)
    national = await engine.branch_snapshot(branch=None)
    return queue_frame(branch, national)
