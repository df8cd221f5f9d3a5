"""The chat's one door into the routing engine (``routing.services``) and telephony.

Everything the chat asks of routing goes through these few functions, so a change in
routing's signatures is absorbed here. Routing refusals (``TransitionRefused``) pass
through unchanged; the consumers map their ``code`` to a typed error frame.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from routing import services as routing
from routing.errors import TransitionRefused

logger = logging.getLogger(__name__)

#: Contacts per routing read in ``queue_positions`` (bounds one reply's size).
QUEUE_BATCH = 500

#: Concurrent routing calls from the callers' hot paths (enqueue, abandon, places) per
#: event loop: thousands of callers starting at once queue here rather than all at
#: routing's Redis pool (100 connections, which waits for a free one).
ROUTING_CONCURRENCY = 64
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _routing_slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(ROUTING_CONCURRENCY)
    return slot


@dataclass(frozen=True)
class Place:
    position: int
    estimate_s: int | None


async def contact_enqueue(
    *, channel: str, home_branch: str | None, municipality_code: str | None
) -> str:
    """Routing reloads its topology itself when a branch or municipality is new to it."""
    async with _routing_slot():
        ticket = await routing.contact_enqueue(
            channel=channel, home_branch=home_branch, municipality_code=municipality_code
        )
    return ticket.contact_id


async def contact_abandon(*, contact_id: str) -> None:
    async with _routing_slot():
        await routing.contact_abandon(contact_id=contact_id)


async def offer_accept(*, contact_id: str, volunteer_id: int) -> Any:
    return await routing.offer_accept(contact_id=contact_id, volunteer_id=str(volunteer_id))


async def offer_decline(*, contact_id: str, volunteer_id: int) -> None:
    await routing.offer_decline(contact_id=contact_id, volunteer_id=str(volunteer_id))


async def contact_end(*, contact_id: str, by: str) -> Any:
    """active → wrap-up; ``by`` is ``caller``, ``volunteer`` or ``system``."""
    return await routing.contact_end(contact_id=contact_id, by=by)


async def contact_wrapup_done(*, contact_id: str, volunteer_id: int) -> Any:
    return await routing.contact_wrapup_done(contact_id=contact_id, volunteer_id=str(volunteer_id))


async def contact_get(*, contact_id: str) -> Any:
    """Routing's live state of a contact (``ContactState``) or None."""
    return await routing.contact_get(contact_id=contact_id)


async def volunteer_get(*, volunteer_id: int) -> Any:
    """Routing's live state of a volunteer (``VolunteerState``: presence, contacts)."""
    return await routing.volunteer_view(volunteer_id=volunteer_id)


async def volunteer_presence_set(*, volunteer_id: int, channel: str, state: str) -> Any:
    return await routing.volunteer_presence_set(
        volunteer_id=str(volunteer_id), channel=channel, state=state
    )


async def volunteer_disconnected(*, volunteer_id: int) -> None:
    """The console dropped; a volunteer routing never saw (never on duty) is no news."""
    try:
        await routing.volunteer_disconnected(volunteer_id=str(volunteer_id))
    except TransitionRefused as refused:
        if refused.code != "unknown_volunteer":
            raise


async def volunteer_reconnected(*, volunteer_id: int) -> bool:
    """True when the volunteer came back within routing's grace."""
    try:
        return bool(await routing.volunteer_reconnected(volunteer_id=str(volunteer_id)))
    except TransitionRefused as refused:
        if refused.code != "unknown_volunteer":
            raise
        return False


def ticker_start() -> None:
    """Routing's time-based steps run in every server process (idempotent per loop)."""
    from routing.ticker import ensure_ticker_started

    ensure_ticker_started()


async def queue_position(*, contact_id: str) -> Place | None:
    """The caller's place (1 = next) and estimate; None when no longer waiting."""
    try:
        async with _routing_slot():
            view = await routing.queue_position(contact_id=contact_id)
    except TransitionRefused:
        return None
    return _place(view)


def _place(view: Any) -> Place | None:
    if view is None or view.state != "waiting":
        return None
    estimate = getattr(view, "estimate_s", None)
    return Place(int(view.position), None if estimate is None else int(estimate))


async def queue_positions(*, contact_ids: Sequence[str]) -> dict[str, Place | None]:
    """Many callers' places in one batched read (routing pipelines its reads); the same
    answers as ``queue_position`` one by one."""
    ids = list(dict.fromkeys(contact_ids))
    places: dict[str, Place | None] = {}
    for start in range(0, len(ids), QUEUE_BATCH):
        async with _routing_slot():
            views = await routing.queue_positions(contact_ids=ids[start : start + QUEUE_BATCH])
        places.update((cid, _place(view)) for cid, view in views.items())
    return places


async def branch_snapshot(*, branch: str | None) -> Any:
    """One branch's counts, or the whole line's with ``branch=None``."""
    if branch is None:
        return await routing.national_snapshot()
    return await routing.branch_snapshot(branch=branch)


def telephony_service(name: str) -> Any | None:
    """``telephony.services.<name>`` if the telephony app provides it yet, else None."""
    try:
        module = importlib.import_module("telephony.services")
    except ImportError:
        return None
    return getattr(module, name, None)
