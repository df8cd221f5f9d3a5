"""Wiring the simulator to an app in the same process (the tests).

The app's webhooks go through Django's ``AsyncClient`` (the full ASGI request handler and
middleware, CSRF checks on); the app's REST client reaches the simulator through
:class:`InProcessTransport` (``settings.TWILIO_HTTP_TRANSPORT``).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.test import AsyncClient

from telephony.simulator.core import AppTransport, Simulator

ACTIVE: list[Simulator] = []


def django_app(client: AsyncClient | None = None) -> AppTransport:
    client = client or AsyncClient(enforce_csrf_checks=True)

    async def send(url: str, params: dict[str, str], signature: str) -> tuple[int, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = await client.post(
            path,
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
        return response.status_code, response.content.decode()

    return send


class InProcessTransport:
    """The REST transport that hands each request to the active simulator."""

    def send(
        self, method: str, url: str, body: str, auth: tuple[str, str] | None
    ) -> tuple[int, str]:
        if not ACTIVE:
            raise RuntimeError("no simulator is active")
        return ACTIVE[-1].rest(method, url, body, auth)

    async def send_async(
        self, method: str, url: str, body: str, auth: tuple[str, str] | None
    ) -> tuple[int, str]:
        return self.send(method, url, body, auth)
