"""The chat's one door into the routing engine (``routing.services``) and telephony.

Everything the chat asks of routing goes through these few functions, so a change in
routing's signatures is absorbed here. Routing refusals (``TransitionRefused``) pass
through unchanged; the consumers map their ``code`` to a typed error frame.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from routing import services as routing
from routing.errors import TransitionRefused


@dataclass(frozen=True)
class Place:
    position: int
    estimate_s: int | None


STALE_TOPOLOGY = ("unknown_branch", "unknown_municipality")


def _topology_forget() -> None:
    """Routing caches its topology for a minute; one loaded before the branches existed
    (a fresh database) would refuse every real branch. Ask for a reload on such a miss.
    TODO(routing): reload on a miss inside the engine, then drop this."""
    engine = routing.get_engine()
    if hasattr(engine, "_topology_at"):
        engine._topology_at = -1e18


async def contact_enqueue(
    *, channel: str, home_branch: str | None, municipality_code: str | None
) -> str:
    for attempt in (1, 2):
        try:
            ticket = await routing.contact_enqueue(
                channel=channel, home_branch=home_branch, municipality_code=municipality_code
            )
            return str(getattr(ticket, "contact_id", ticket))
        except TransitionRefused as refused:
            if attempt == 2 or refused.code not in STALE_TOPOLOGY:
                raise
            _topology_forget()
    raise AssertionError("unreachable")


async def contact_abandon(*, contact_id: str) -> None:
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
    engine = routing.get_engine()
    return await engine.store.contact_get(contact_id=contact_id)


async def volunteer_get(*, volunteer_id: int) -> Any:
    """Routing's live state of a volunteer (``VolunteerState``: presence, contacts)."""
    engine = routing.get_engine()
    return await engine.store.volunteer_get(volunteer_id=str(volunteer_id))


async def volunteer_presence_set(*, volunteer_id: int, channel: str, state: str) -> Any:
    try:
        return await routing.volunteer_presence_set(
            volunteer_id=str(volunteer_id), channel=channel, state=state
        )
    except TransitionRefused as refused:
        if refused.code not in STALE_TOPOLOGY:
            raise
        _topology_forget()
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
        view = await routing.queue_position(contact_id=contact_id)
    except TransitionRefused:
        return None
    if view is None or view.state != "waiting":
        return None
    estimate = getattr(view, "estimate_s", None)
    return Place(int(view.position), None if estimate is None else int(estimate))


async def branch_snapshot(*, branch: str | None) -> Any:
    """One branch's counts, or the whole line's with ``branch=None``."""
    if branch is None:
        return await routing.national_snapshot()
    try:
        return await routing.branch_snapshot(branch=branch)
    except TransitionRefused as refused:
        if refused.code not in STALE_TOPOLOGY:
            raise
        _topology_forget()
    return await routing.branch_snapshot(branch=branch)


def telephony_service(name: str) -> Any | None:
    """``telephony.services.<name>`` if the telephony app provides it yet, else None."""
    try:
        module = importlib.import_module("telephony.services")
    except ImportError:
        return None
    return getattr(module, name, None)
