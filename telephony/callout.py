"""Calls the line makes: the volunteer's phone on an offer, 113 on a handover, hang-ups,
redirects, and the clean-up of Call resources at Twilio.

Routing's in-process hooks (``offer.made``, ``offer.withdrawn``, ``contact.requeued``)
only *spawn* work here, so a webhook that triggered an offer answers Twilio at once; the
REST request runs in the background on the same event loop. If the process dies before
it runs, the offer simply expires and routing moves on.

Log lines name contact ids and Twilio error codes only: never a number, never a
TwilioRestException's message (it can quote the number it refused).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from routing import services as routing
from routing.errors import TransitionRefused
from routing.events import Event
from routing.store.base import ContactState
from telephony import callmap, directory, twiml
from telephony.rest import rest_client

logger = logging.getLogger(__name__)
DELETE_AFTER_S = 60  # Twilio: wait at least a minute before deleting a finished call
_background: set[asyncio.Task[None]] = set()
#: Contacts whose caller is being moved back to hold: their next call-out waits for it,
#: so the new volunteer never joins the conference the caller is about to leave.
_moving: dict[str, asyncio.Event] = {}


# --- background work ----------------------------------------------------------------------
async def _quietly(coro: Coroutine[Any, Any, None], what: str) -> None:
    try:
        await coro
    except Exception as exc:  # never the message: it may quote a number
        logger.warning(
            "telephony: %s failed (%s, code %s)",
            what,
            type(exc).__name__,
            getattr(exc, "code", "-"),
        )


def spawn(coro: Coroutine[Any, Any, None], what: str) -> None:
    """Run in the background, outside the request's context: the request's executor for
    ``sync_to_async`` is gone by the time the task needs it."""
    task = asyncio.get_running_loop().create_task(
        _quietly(coro, what), context=contextvars.Context()
    )
    _background.add(task)
    task.add_done_callback(_background.discard)


async def drain() -> None:
    """Wait for spawned work (tests and the simulator use this to settle)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


# --- routing state ------------------------------------------------------------------------
async def contact_state(contact_id: str) -> ContactState | None:
    return await routing.contact_get(contact_id=contact_id)


async def require_active(contact_id: str, volunteer_id: str) -> ContactState:
    state = await contact_state(contact_id)
    info = await callmap.contact_get(contact_id)
    if state is None or state.channel != "phone" or not info.get("caller"):
        raise TransitionRefused("unknown_contact", "not a live phone call")
    if state.state != "active" or state.volunteer != volunteer_id:
        raise TransitionRefused("not_active")
    return state


async def offer_missed(*, contact_id: str, volunteer_id: str) -> None:
    """No answer, busy, voicemail or no key: a missed offer, and routing moves on at once
    (two in a row pause the volunteer, so a phone nobody answers is not rung in a loop).
    Already moved on (the offer ran out, the caller left): nothing to do."""
    try:
        await routing.offer_miss(contact_id=contact_id, volunteer_id=volunteer_id)
    except TransitionRefused:
        pass


# --- REST actions -------------------------------------------------------------------------
def _caller_id(info: dict[str, str]) -> str:
    return info.get("dialled") or settings.LINE_PHONE_NUMBER


async def _call_info(contact_id: str) -> dict[str, str]:
    """The contact's call legs (recorded before routing could offer it)."""
    return await callmap.contact_get(contact_id)


async def volunteer_call_out(contact_id: str, volunteer_id: str) -> None:
    """Ring the volunteer's phone for an offered phone contact."""
    moving = _moving.get(contact_id)
    if moving is not None:
        await moving.wait()
    info = await _call_info(contact_id)
    if not info.get("caller"):
        return  # not a Twilio call (a routing test or simulation): nothing to ring
    number = await directory.volunteer_phone(volunteer_id)
    if not number:
        logger.info("telephony: volunteer %s has no phone number; offer missed", volunteer_id)
        await offer_missed(contact_id=contact_id, volunteer_id=volunteer_id)
        return
    query = {"contact": contact_id, "volunteer": volunteer_id}
    try:
        call = await rest_client().calls.create_async(
            to=number,
            from_=_caller_id(info),
            url=twiml.webhook_url("volunteer-answer", **query),
            method="POST",
            status_callback=twiml.webhook_url("voice-status"),
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            timeout=int(settings.ROUTING["OFFER_TIMEOUT_S"]),
            record=False,
        )
    except Exception as exc:
        logger.warning(
            "telephony: call-out for contact %s failed (code %s)",
            contact_id,
            getattr(exc, "code", "-"),
        )
        await offer_missed(contact_id=contact_id, volunteer_id=volunteer_id)
        return
    await callmap.call_put(call.sid, {"r": "volunteer", "c": contact_id, "v": volunteer_id})
    await callmap.contact_set(contact_id, **{f"leg:{volunteer_id}": call.sid})
    state = await contact_state(contact_id)
    if state is None or state.state != "offered" or state.offered_to != volunteer_id:
        await hang_up(call.sid, answered=False)  # withdrawn while we dialled


async def hang_up(call_sid: str, *, answered: bool) -> None:
    await rest_client().calls(call_sid).update_async(status="completed" if answered else "canceled")


async def call_finished(call_sid: str) -> bool:
    """Whether Twilio reports the call over (False when it cannot tell)."""
    try:
        call = await rest_client().calls(call_sid).fetch_async()
    except Exception:
        return False
    return call.status in ("completed", "busy", "failed", "no-answer", "canceled")


async def redirect(call_sid: str, document: str) -> None:
    await rest_client().calls(call_sid).update_async(twiml=document)


async def hang_up_volunteer_legs(contact_id: str) -> None:
    info = await callmap.contact_get(contact_id)
    for name, sid in info.items():
        if name.startswith("leg:"):
            spawn(hang_up(sid, answered=bool(info.get(f"up:{sid}"))), "hang-up")


async def add_crisis_line(contact_id: str) -> None:
    info = await callmap.contact_get(contact_id)
    participant = (
        await rest_client()
        .conferences(twiml.conference_name(contact_id))
        .participants.create_async(
            from_=_caller_id(info),
            to=settings.CRISIS_PHONE_NUMBER,
            label="crisis",
            beep="false",
            start_conference_on_enter=True,
            end_conference_on_exit=False,
            record=False,
            status_callback=twiml.webhook_url("voice-status"),
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
        )
    )
    if participant.call_sid:
        await callmap.call_put(participant.call_sid, {"r": "crisis", "c": contact_id})
        await callmap.contact_set(contact_id, crisis=participant.call_sid)


async def caller_back_to_hold(contact_id: str, moving: asyncio.Event) -> None:
    """The volunteer is gone mid-call: tell the caller and wait for the next one."""
    try:
        info = await callmap.contact_get(contact_id)
        active = info.get("active")
        if active:
            await callmap.contact_unset(contact_id, "active")
            spawn(hang_up(active, answered=True), "hang-up")
        if info.get("caller"):
            document = twiml.caller_hold(contact_id, greet=False, requeued=True)
            await redirect(info["caller"], document)
    finally:
        moving.set()
        if _moving.get(contact_id) is moving:
            del _moving[contact_id]


async def cancel_call_out(contact_id: str, volunteer_id: str) -> None:
    info = await callmap.contact_get(contact_id)
    sid = info.get(f"leg:{volunteer_id}")
    if sid and info.get("active") != sid:
        await hang_up(sid, answered=bool(info.get(f"up:{sid}")))


# --- clean-up -----------------------------------------------------------------------------
async def schedule_delete(call_sid: str) -> None:
    """Delete the Call resource at Twilio once it is final (a Celery task, with backoff)."""
    from telephony.tasks import call_resource_delete

    try:
        await sync_to_async(call_resource_delete.apply_async)(
            args=(call_sid, time.time()), countdown=DELETE_AFTER_S
        )
    except Exception as exc:  # the broker is down, or an eager retry propagated
        logger.warning("telephony: could not queue a Call deletion (%s)", type(exc).__name__)


async def forget_if_done(contact_id: str) -> None:
    info = await callmap.contact_get(contact_id)
    live = [n for n in info if n in ("caller", "crisis") or n.startswith("leg:")]
    if not live:
        await callmap.contact_forget(contact_id)


# --- routing hooks ------------------------------------------------------------------------
def on_offer_made(event: Event) -> None:
    if event.payload.get("channel") == "phone":
        spawn(
            volunteer_call_out(event.payload["contact_id"], event.payload["volunteer_id"]),
            "call-out",
        )


def on_offer_withdrawn(event: Event) -> None:
    spawn(
        cancel_call_out(event.payload["contact_id"], event.payload["volunteer_id"]),
        "call-out cancel",
    )


def on_contact_requeued(event: Event) -> None:
    if event.payload.get("channel") == "phone":
        contact_id = event.payload["contact_id"]
        moving = _moving[contact_id] = asyncio.Event()
        spawn(caller_back_to_hold(contact_id, moving), "back to hold")


def connect() -> None:
    """Subscribe to routing's events (from ``TelephonyConfig.ready``)."""
    from routing import events

    events.subscribe("offer.made", on_offer_made)
    events.subscribe("offer.withdrawn", on_offer_withdrawn)
    events.subscribe("contact.requeued", on_contact_requeued)
