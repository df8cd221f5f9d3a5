"""Signatures, refusals that change nothing, idempotent callbacks, the fallback."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest
import redis.asyncio as aioredis
from django.core.checks import run_checks
from django.test import AsyncClient
from twilio.request_validator import RequestValidator

from routing.models import ContactRecord
from telephony.signature import signature_valid
from tests.telephony.conftest import BASE, CALLER, REDIS_URL, TOKEN, UTRECHT_NUMBER, contact_of

pytestmark = pytest.mark.django_db(transaction=True)
INCOMING = "/twilio/voice/incoming/"


def test_the_twilio_librarys_own_example_is_accepted():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signature_valid(token="12345", url=url, params=params, signature=good)
    assert not signature_valid(token="12345", url=url, params=params, signature="x" + good[1:])
    assert not signature_valid(token="12345", url=url, params=params, signature="")
    assert not signature_valid(token="", url=url, params=params, signature=good)
    tampered = {**params, "Digits": "1235"}
    assert not signature_valid(token="12345", url=url, params=tampered, signature=good)
    assert not signature_valid(
        token="12345", url=url.replace("bar=2", "bar=3"), params=params, signature=good
    )


def call_params(**more: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "1" * 32,
        "CallSid": "CA" + "ab" * 16,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": CALLER,
        "Caller": CALLER,
        "To": UTRECHT_NUMBER,
        "Called": UTRECHT_NUMBER,
        **more,
    }


async def post(path: str, params: dict[str, str], signature: str | None, **headers: str) -> Any:
    client = AsyncClient(enforce_csrf_checks=True)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return await client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )


async def redis_keys(prefixes: tuple[str, ...]) -> list[str]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = []
    for prefix in prefixes:
        keys += [k async for k in client.scan_iter(match=f"{prefix}*")]
    await client.aclose()
    return keys


@pytest.fixture
def prefixes(engine: Any, phone_settings: Any) -> tuple[str, ...]:
    return (engine.store.prefix, phone_settings.TELEPHONY_REDIS_PREFIX)


@pytest.mark.parametrize(
    "case", ["missing", "wrong token", "tampered", "forwarded host", "other path", "GET"]
)
async def test_a_bad_signature_gets_403_and_writes_nothing(case, line, prefixes, caplog):
    caplog.set_level("DEBUG")
    params = call_params()
    validator = RequestValidator(TOKEN)
    signature: str | None = validator.compute_signature(BASE + INCOMING, params)
    headers: dict[str, str] = {}
    if case == "missing":
        signature = None
    elif case == "wrong token":
        signature = RequestValidator("not-the-token").compute_signature(BASE + INCOMING, params)
    elif case == "tampered":
        params = {**params, "To": "+31300000000"}
    elif case == "forwarded host":
        signature = validator.compute_signature("https://evil.example" + INCOMING, params)
        headers = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    elif case == "other path":
        signature = validator.compute_signature(BASE + "/twilio/voice/status/", params)
    before = await redis_keys(prefixes)
    with mock.patch("celery.app.task.Task.apply_async", autospec=True) as queued:
        if case == "GET":
            response = await AsyncClient().get(
                INCOMING,
                params,
                headers={
                    "X-Twilio-Signature": validator.compute_signature(
                        BASE + INCOMING + "?" + urlencode(params), {}
                    )
                },
            )
        else:
            response = await post(INCOMING, params, signature, **headers)
    assert response.status_code == 403
    assert await redis_keys(prefixes) == before == []
    assert await ContactRecord.objects.acount() == 0
    queued.assert_not_called()
    for record in caplog.records:
        assert CALLER not in record.getMessage() and "CA" + "ab" * 16 not in record.getMessage()


async def test_without_an_auth_token_every_webhook_is_403(line, prefixes, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    params = call_params()
    for path in (
        INCOMING,
        "/twilio/voice/status/",
        "/twilio/voice/fallback/",
        "/twilio/voice/hold/",
        "/twilio/voice/volunteer/answer/",
    ):
        signature = RequestValidator("").compute_signature(BASE + path, params)
        assert (await post(path, params, signature)).status_code == 403
    assert await redis_keys(prefixes) == []


def test_check_reports_a_missing_auth_token(settings):
    settings.TWILIO_AUTH_TOKEN = ""
    ids = {m.id for m in run_checks(tags=["telephony"])}
    assert "telephony.W001" in ids
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = BASE
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    assert run_checks(tags=["telephony"]) == []


async def test_unknown_extra_parameters_still_work(sim, line):
    call = await sim.incoming(
        from_=CALLER,
        to=UTRECHT_NUMBER,
        extra={"StirVerstat": "TN-Validation-Passed-A", "SomethingNew": "x" * 300},
    )
    assert not call.over and contact_of(sim)


async def test_fallback_answers_twiml_with_database_and_redis_down(phone_settings):
    params = call_params(ErrorCode="11200")
    path = "/twilio/voice/fallback/"
    signature = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    with (
        mock.patch(
            "django.db.backends.utils.CursorWrapper.execute",
            side_effect=AssertionError("database touched"),
        ),
        mock.patch(
            "django.db.backends.base.base.BaseDatabaseWrapper.ensure_connection",
            side_effect=AssertionError("database touched"),
        ),
        mock.patch("redis.asyncio.Redis.execute_command", side_effect=AssertionError("redis")),
        mock.patch("redis.Redis.execute_command", side_effect=AssertionError("redis")),
    ):
        response = await post(path, params, signature)
    assert response.status_code == 200
    root = ET.fromstring(response.content)  # noqa: S314
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "1 1 3" in root[0].text


async def test_duplicate_and_out_of_order_callbacks_change_state_once(sim, line):
    from tests.telephony.conftest import on_duty

    await on_duty(line["anna"])
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    [leg] = sim.outbound()
    await sim.hangup(call)
    deletes = [r for r in sim.rest_log if r[0] == "DELETE"]
    status_url = BASE + "/twilio/voice/status/"
    completed = sim._params(call, CallDuration="60")
    for params in (
        completed,
        completed,
        {**completed, "CallStatus": "ringing"},
        sim._params(leg),
        {**completed, "CallSid": "CA" + "9" * 32},
    ):
        status, _ = await sim.post(status_url, params)
        assert status == 200
    await sim.settle()
    # A repeated incoming webhook (same CallSid) does not enqueue a second contact.
    status, body = await sim.post(BASE + INCOMING, sim._params(call, CallStatus="ringing"))
    assert status == 200 and "ll-contact-" not in body
    assert [r for r in sim.rest_log if r[0] == "DELETE"] == deletes
    from routing import services as routing

    state = await routing.get_engine().store.contact_get(contact_id=contact)
    assert state.state == "wrap_up"
    assert len(sim.conferences) == 1
