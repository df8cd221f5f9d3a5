"""The middleware stack under ASGI: memory-only hooks in the event loop, database work
in the request's thread, and the same refusals and headers as Django's own classes."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.contrib.sessions.models import Session
from django.test import AsyncClient
from twilio.request_validator import RequestValidator

from tests.conftest import PASSWORD, make_user

TOKEN = "middleware-test-token-0123456789"  # noqa: S105
BASE = "https://line.example.org"
PAGE_HEADERS = (
    "Content-Security-Policy",
    "Permissions-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
)


@pytest.fixture
def hops() -> Any:
    """The middleware hooks sent to a thread (any ``sync_to_async`` made for a
    middleware method while the test runs, by Django's classes or ours)."""
    sent: list[str] = []
    real_init = SyncToAsync.__init__

    def record(self: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        name = getattr(func, "__qualname__", "")
        if "Middleware." in name:
            sent.append(name)
        real_init(self, func, *args, **kwargs)

    with mock.patch.object(SyncToAsync, "__init__", record):
        yield sent


@pytest.mark.django_db(transaction=True)
async def test_a_webhook_runs_every_hook_in_the_loop_and_sets_no_cookie(
    settings: Any, hops: list[str]
) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = BASE
    path = "/twilio/voice/fallback/"
    params = {"CallSid": "CA" + "1" * 32, "CallStatus": "ringing"}
    signature = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    response = await AsyncClient(enforce_csrf_checks=True).post(
        path, params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200
    assert hops == []
    assert all(name in response for name in PAGE_HEADERS)
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert await Session.objects.acount() == 0


@pytest.mark.django_db(transaction=True)
async def test_a_form_post_is_checked_for_csrf_and_its_session_saved_in_a_thread(
    hops: list[str],
) -> None:
    await sync_to_async(make_user)("wim")
    client = AsyncClient(enforce_csrf_checks=True)
    page = await client.get("/login/")
    assert page.status_code == 200 and "csrftoken" in page.cookies
    assert all(name in page for name in PAGE_HEADERS)
    # The page read the session (request.user), so its response hook went to the thread;
    # the CSRF cookie was set in the loop.
    assert hops == ["SessionMiddleware.process_response"]

    hops.clear()
    refused = await client.post("/login/", {"username": "wim", "password": PASSWORD})
    assert refused.status_code == 403
    assert await Session.objects.acount() == 0
    assert hops == ["CsrfViewMiddleware.process_view"]  # the check ran in the thread

    hops.clear()
    token = page.cookies["csrftoken"].value
    login = await client.post(
        "/login/", {"username": "wim", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert login.status_code == 302
    assert await Session.objects.acount() == 1
    assert "CsrfViewMiddleware.process_view" in hops
    assert "SessionMiddleware.process_response" in hops
    assert "sessionid" in login.cookies


@pytest.mark.django_db(transaction=True)
async def test_the_console_reads_its_session_in_a_thread_and_stays_signed_in() -> None:
    user = await sync_to_async(make_user)("jet")
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    response = await client.get("/console/")
    assert response.status_code == 200
    assert "Cookie" in response["Vary"]
