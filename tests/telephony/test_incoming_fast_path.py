"""The incoming-call webhook's fast path: the caller's leg and contact recorded in one
round trip, and the hold document built once per language and configuration."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
import redis.asyncio as aioredis
from django.utils import translation

from telephony import callmap, twiml
from tests.telephony.conftest import BASE, CALLER, REDIS_URL, UTRECHT_NUMBER, contact_of

pytestmark = pytest.mark.django_db(transaction=True)
INCOMING = BASE + "/twilio/voice/incoming/"


async def _contact_keys(prefix: str) -> list[str]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}:contact:*")]
    finally:
        await client.aclose()


async def test_a_repeated_incoming_webhook_rejoins_the_hold_and_records_nothing_new(
    sim: Any, phone_settings: Any
) -> None:
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    keys = await _contact_keys(phone_settings.TELEPHONY_REDIS_PREFIX)
    assert len(keys) == 1

    status, body = await sim.post(INCOMING, sim._params(call, CallStatus="ringing"))
    assert status == 200
    root = ET.fromstring(body)  # noqa: S314 - our own TwiML
    assert [child.tag for child in root] == ["Dial", "Hangup"]  # no second greeting
    assert f"ll-contact-{contact}" in body
    assert await _contact_keys(phone_settings.TELEPHONY_REDIS_PREFIX) == keys
    assert list(sim.conferences) == [f"ll-contact-{contact}"]


async def test_caller_record_keeps_the_first_contact_only(phone_settings: Any) -> None:
    sid = "CA" + "7" * 32
    assert await callmap.caller_record(sid, "a" * 32, caller=sid, dialled="+31", home_name="X")
    assert not await callmap.caller_record(sid, "b" * 32, caller=sid, dialled="+31", home_name="")
    assert await callmap.call_get(sid) == {"c": "a" * 32, "r": "caller"}
    assert await callmap.contact_get("a" * 32) == {
        "caller": sid,
        "dialled": "+31",
        "home_name": "X",
    }
    assert await callmap.contact_get("b" * 32) == {}
    await callmap.call_take(sid)
    await callmap.contact_forget("a" * 32)


@pytest.mark.parametrize("language", ["nl", "en"])
@pytest.mark.parametrize(
    "kind", [{"greet": True}, {"greet": False}, {"greet": False, "requeued": True}]
)
def test_the_cached_hold_document_is_the_one_built_fresh(
    phone_settings: Any, language: str, kind: dict[str, bool]
) -> None:
    contact = "0123456789abcdef0123456789abcdef"
    with translation.override(language):
        cached = twiml.caller_hold(contact, **kind)
        fresh = twiml._caller_hold(
            contact, greet=kind["greet"], requeued=kind.get("requeued", False)
        )
        assert cached == fresh
        assert twiml.caller_hold("f" * 32, **kind) == cached.replace(contact, "f" * 32)
    assert twiml._CONTACT_SLOT not in cached
    phone_settings.PUBLIC_BASE_URL = "https://elsewhere.example.org"
    with translation.override(language):
        assert "https://elsewhere.example.org/twilio/voice/hold/" in twiml.caller_hold(
            contact, **kind
        )
