"""Twilio webhooks: verify, copy the allowlisted fields, call one service, answer TwiML.

All views are async and behind :func:`telephony.signature.twilio_webhook` (403 without a
valid signature). A signed request about an unknown or stale call answers 200 so Twilio
stops retrying.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse

from telephony import services, twiml
from telephony.fields import call_fields, caller_number
from telephony.signature import twilio_webhook

_CONTACT = re.compile(r"^[0-9a-f]{32}$")
_VOLUNTEER = re.compile(r"^[0-9]{1,12}$")


def _twiml(document: str) -> HttpResponse:
    return HttpResponse(document, content_type="text/xml; charset=utf-8")


def _ids(request: HttpRequest) -> tuple[str, str]:
    contact = request.GET.get("contact", "")
    volunteer = request.GET.get("volunteer", "")
    return (
        contact if _CONTACT.match(contact) else "",
        volunteer if _VOLUNTEER.match(volunteer) else "",
    )


@twilio_webhook
async def voice_incoming(request: HttpRequest) -> HttpResponse:
    document = await services.call_incoming(
        fields=call_fields(request.POST), caller_key=caller_number(request.POST)
    )
    return _twiml(document)


@twilio_webhook
async def voice_region(request: HttpRequest) -> HttpResponse:
    document = await services.call_region(
        fields=call_fields(request.POST), caller_key=caller_number(request.POST)
    )
    return _twiml(document)


@twilio_webhook
async def voice_hold(request: HttpRequest) -> HttpResponse:
    contact, _ = _ids(request)
    if not contact:
        return _twiml(twiml.hold_announcement("", position=None, wait_minutes=None))
    return _twiml(await services.call_hold(contact_id=contact))


@twilio_webhook
async def voice_status(request: HttpRequest) -> HttpResponse:
    await services.call_status(fields=call_fields(request.POST))
    return _twiml(twiml.empty())


@twilio_webhook
async def voice_fallback(request: HttpRequest) -> HttpResponse:
    """Twilio's fallback URL: valid TwiML with no database and no Redis at all."""
    return _twiml(twiml.fallback())


@twilio_webhook
async def volunteer_answer(request: HttpRequest) -> HttpResponse:
    contact, volunteer = _ids(request)
    if not (contact and volunteer):
        return _twiml(twiml.offer_gone())
    return _twiml(
        await services.volunteer_answer(
            contact_id=contact, volunteer_id=volunteer, fields=call_fields(request.POST)
        )
    )


@twilio_webhook
async def volunteer_accept(request: HttpRequest) -> HttpResponse:
    contact, volunteer = _ids(request)
    if not (contact and volunteer):
        return _twiml(twiml.offer_gone())
    return _twiml(
        await services.volunteer_accept(
            contact_id=contact, volunteer_id=volunteer, fields=call_fields(request.POST)
        )
    )


async def benchmark_ping(request: HttpRequest) -> HttpResponse:
    """The benchmark's baseline: a trivial async view (mounted only when enabled)."""
    return HttpResponse(b"ok", content_type="text/plain")
