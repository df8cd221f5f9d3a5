"""The phone line's rules: one function per thing that happens to a call.

Webhook views parse and verify, then call exactly one of these; the console calls
:func:`call_handover` and :func:`call_end`. Every function is safe to run twice for the
same event (Twilio retries, duplicate callbacks): state moves once, later repeats answer
harmlessly.

Nothing identifying passes through here except ``caller_key`` in :func:`call_incoming` /
:func:`call_region`, which goes straight to routing's fair-use HMAC and nowhere else.
"""

from __future__ import annotations

import logging
import uuid

from django.utils.translation import gettext as _

from routing import services as routing
from routing.errors import FairUseRefused, TransitionRefused
from telephony import callmap, callout, directory, twiml
from telephony.fields import TERMINAL_STATUSES, CallFields

logger = logging.getLogger(__name__)


def region_menu_enabled() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "TELEPHONY_REGION_MENU", True))


# --- the caller's leg -------------------------------------------------------------------
async def call_incoming(*, fields: CallFields, caller_key: str | None) -> str:
    """A call to one of the line's numbers: a branch's local number goes to that branch;
    the national number hears the short region menu first (when enabled)."""
    if not fields.call_sid:
        return twiml.fallback()
    branch = await directory.branch_for_number(fields.dialled)
    if branch is None and region_menu_enabled():
        return twiml.region_menu()
    return await _enqueue(fields, caller_key, branch)


async def call_region(*, fields: CallFields, caller_key: str | None) -> str:
    """The region menu's answer (or its time-out): enqueue for that region, else national."""
    if not fields.call_sid:
        return twiml.fallback()
    branch = await directory.branch_for_region(fields.digits) if fields.digits else None
    return await _enqueue(fields, caller_key, branch)


async def _enqueue(
    fields: CallFields, caller_key: str | None, branch: directory.BranchRef | None
) -> str:
    sid = fields.call_sid
    # the call is recorded under our own contact id first: routing may offer the contact
    # (and telephony ring a volunteer) inside contact_enqueue itself
    contact_id = uuid.uuid4().hex
    home_name = branch.name if branch else ""
    if not await callmap.caller_record(
        sid, contact_id, caller=sid, dialled=fields.dialled, home_name=home_name
    ):
        known = await callmap.call_get(sid)
        if known and known.get("c"):
            return twiml.caller_hold(known["c"], greet=False)
        return twiml.empty()
    try:
        ticket = await routing.contact_enqueue(
            channel="phone",
            home_branch=branch.slug if branch else None,
            fair_use_key=caller_key,
            contact_id=contact_id,
        )
    except FairUseRefused as refused:
        await _unrecord(sid, contact_id)
        return twiml.refused_fair_use(str(refused.user_message))
    except Exception:
        await _unrecord(sid, contact_id)
        raise
    return twiml.caller_hold(ticket.contact_id, greet=True)


async def _unrecord(sid: str, contact_id: str) -> None:
    await callmap.call_take(sid)
    await callmap.contact_forget(contact_id)


async def call_hold(*, contact_id: str) -> str:
    """The conference's wait loop: place in line and an honest estimate, every minute."""
    try:
        view = await routing.queue_position(contact_id=contact_id)
    except TransitionRefused:
        return twiml.hold_announcement(contact_id, position=None, wait_minutes=None)
    if view.state != "waiting" or view.position < 1:
        return twiml.hold_announcement(contact_id, position=None, wait_minutes=None)
    minutes = None if view.estimate_s is None else round(view.estimate_s / 60)
    return twiml.hold_announcement(contact_id, position=view.position, wait_minutes=minutes)


# --- the volunteer's leg ----------------------------------------------------------------
async def volunteer_answer(*, contact_id: str, volunteer_id: str, fields: CallFields) -> str:
    """The volunteer picked up: whisper where the caller is from, ask for a 1."""
    state = await callout.contact_state(contact_id)
    if state is None or state.state != "offered" or state.offered_to != volunteer_id:
        return twiml.offer_gone()
    if fields.call_sid:
        await callmap.contact_set(contact_id, **{f"up:{fields.call_sid}": "1"})
    info = await callmap.contact_get(contact_id)
    name = info.get("home_name") or await directory.branch_name(state.home) or _("the Netherlands")
    return twiml.volunteer_whisper(contact_id, volunteer_id, branch_name=name)


async def volunteer_accept(*, contact_id: str, volunteer_id: str, fields: CallFields) -> str:
    """Digits from the whisper: 1 takes the call into the contact's conference."""
    if fields.digits != "1":
        try:  # another key: a deliberate "not now"
            await routing.offer_decline(contact_id=contact_id, volunteer_id=volunteer_id)
        except TransitionRefused:
            pass
        return twiml.goodbye(_("The caller goes to another volunteer."))
    try:
        await routing.offer_accept(contact_id=contact_id, volunteer_id=volunteer_id)
    except TransitionRefused:
        return twiml.offer_gone()
    if fields.call_sid:
        await callmap.contact_set(contact_id, active=fields.call_sid, volunteer=volunteer_id)
    return twiml.volunteer_join(contact_id)


# --- status callbacks (every leg) -------------------------------------------------------
async def call_status(*, fields: CallFields) -> None:
    """A leg's status changed. Only the first terminal status of a known leg acts; a
    repeat, a late ``ringing`` or an unknown CallSid changes nothing."""
    if fields.call_status not in TERMINAL_STATUSES or not fields.call_sid:
        return
    leg = await callmap.call_take(fields.call_sid)
    if leg is None:
        return
    await callout.schedule_delete(fields.call_sid)
    contact_id, role = leg.get("c", ""), leg.get("r", "")
    if not contact_id:
        return
    if role == "caller":
        await _caller_left(contact_id)
    elif role == "volunteer":
        await _volunteer_left(contact_id, leg.get("v", ""))
    elif role == "crisis":
        await callmap.contact_unset(contact_id, "crisis")
    await callout.forget_if_done(contact_id)


async def _caller_left(contact_id: str) -> None:
    await callmap.contact_unset(contact_id, "caller")
    try:
        await routing.contact_abandon(contact_id=contact_id)
    except TransitionRefused:
        pass  # already ended by the volunteer or the console
    await callout.hang_up_volunteer_legs(contact_id)


async def _volunteer_left(contact_id: str, volunteer_id: str) -> None:
    info = await callmap.contact_unset_leg(contact_id, volunteer_id)
    state = await callout.contact_state(contact_id)
    if state is None:
        return
    if state.state == "offered" and state.offered_to == volunteer_id:
        await callout.offer_missed(contact_id=contact_id, volunteer_id=volunteer_id)
        return
    if state.state != "active" or state.volunteer != volunteer_id:
        return
    if info.get("ending"):
        return
    if info.get("handover"):
        # Warm handover done: the volunteer dropped off, caller and 113 talk on.
        try:
            await routing.contact_end(contact_id=contact_id, by="volunteer")
        except TransitionRefused:
            pass
        return
    caller = info.get("caller")
    if caller and await callout.call_finished(caller):
        # The caller hung up (which ended the conference); their own status callback
        # may still be on its way: Twilio does not order callbacks of different calls.
        await _caller_left(contact_id)
        return
    # The volunteer's phone dropped mid-call: the caller goes first to the next volunteer
    # (routing tells them via ``contact.requeued``, which redirects the caller to hold).
    try:
        await routing.contact_requeue(contact_id=contact_id)
    except TransitionRefused:
        pass


# --- the console's buttons --------------------------------------------------------------
async def call_handover(*, contact_id: str, volunteer_id: int | str) -> None:
    """Warm handover: add 113 (``CRISIS_PHONE_NUMBER``) to the caller's conference. The
    volunteer hears both and drops off when done. Raises ``TransitionRefused`` unless the
    contact is a phone call in conversation with this volunteer."""
    volunteer_id = str(volunteer_id)
    await callout.require_active(contact_id, volunteer_id)
    if not await callmap.contact_flag(contact_id, "handover"):
        return  # already handed over: pressing twice adds 113 once
    try:
        await callout.add_crisis_line(contact_id)
    except Exception:
        await callmap.contact_unset(contact_id, "handover")
        raise


async def call_end(*, contact_id: str, volunteer_id: int | str) -> None:
    """The volunteer ends the call from the console: the caller hears a goodbye (unless
    113 has taken over), the volunteer's phone hangs up, wrap-up opens."""
    volunteer_id = str(volunteer_id)
    await callout.require_active(contact_id, volunteer_id)
    if not await callmap.contact_flag(contact_id, "ending"):
        return
    await routing.contact_end(contact_id=contact_id, by="volunteer")
    info = await callmap.contact_get(contact_id)
    if not info.get("handover") and info.get("caller"):
        await callout.redirect(info["caller"], twiml.call_ended())
    await callout.hang_up_volunteer_legs(contact_id)
