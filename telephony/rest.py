"""The app's Twilio REST client: the ``twilio`` library over a transport we choose.

The library builds every request (paths, parameter names, error parsing); the transport
only moves bytes. ``settings.TWILIO_API_BASE_URL`` replaces ``https://api.twilio.com`` so
the client can talk to the simulator (``listenline simulate-call`` serves the REST API);
``settings.TWILIO_HTTP_TRANSPORT`` (a dotted path to a zero-argument factory) replaces the
HTTP layer altogether, which the tests use to reach the in-process simulator.

Our transports log nothing: the library's own HTTP clients log URLs at INFO.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient, HttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"
TIMEOUT_S = 10.0
NOT_COMPLETE_YET = 20009  # "Cannot delete this resource before it is complete"
NOT_FOUND = 20404

__all__ = ["TwilioRestException", "NOT_COMPLETE_YET", "NOT_FOUND", "rest_client"]


class Transport(Protocol):
    """Moves one form-encoded request; returns (status code, body text)."""

    def send(
        self, method: str, url: str, body: str, auth: tuple[str, str] | None
    ) -> tuple[int, str]: ...

    async def send_async(
        self, method: str, url: str, body: str, auth: tuple[str, str] | None
    ) -> tuple[int, str]: ...


class HttpTransport:
    """Plain HTTP: ``requests`` for Celery tasks, ``aiohttp`` inside the event loop."""

    def send(
        self, method: str, url: str, body: str, auth: tuple[str, str] | None
    ) -> tuple[int, str]:
        response = requests.request(
            method,
            url,
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=auth,
            timeout=TIMEOUT_S,
        )
        return response.status_code, response.text

    async def send_async(
        self, method: str, url: str, body: str, auth: tuple[str, str] | None
    ) -> tuple[int, str]:
        import aiohttp

        basic = aiohttp.BasicAuth(*auth) if auth else None
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.request(
                method,
                url,
                data=body.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                auth=basic,
            ) as response:
                return response.status, await response.text()


def _encode(data: Mapping[str, Any] | None) -> str:
    if not data:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((key, str(item)))
    return urlencode(pairs)


def _rebase(url: str, params: Mapping[str, Any] | None) -> str:
    base = (settings.TWILIO_API_BASE_URL or TWILIO_API).rstrip("/")
    if url.startswith(TWILIO_API):
        url = base + url[len(TWILIO_API) :]
    if params:
        url += ("&" if "?" in url else "?") + _encode(params)
    return url


def transport() -> Transport:
    dotted = getattr(settings, "TWILIO_HTTP_TRANSPORT", "")
    return import_string(dotted)() if dotted else HttpTransport()


class _SyncClient(HttpClient):
    def __init__(self, transport: Transport) -> None:
        super().__init__(logger=None, is_async=False, timeout=TIMEOUT_S)  # type: ignore[arg-type]
        self.transport = transport

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        auth: Any = None,
        timeout: Any = None,  # noqa: ASYNC109
        allow_redirects: bool = False,
    ) -> Response:
        status, text = self.transport.send(method, _rebase(url, params), _encode(data), auth)
        return Response(status, text)


class _AsyncClient(AsyncHttpClient):
    def __init__(self, transport: Transport) -> None:
        super().__init__(logger=None, is_async=True, timeout=TIMEOUT_S)  # type: ignore[arg-type]
        self.transport = transport

    async def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        auth: Any = None,
        timeout: Any = None,  # noqa: ASYNC109
        allow_redirects: bool = False,
    ) -> Response:
        status, text = await self.transport.send_async(
            method, _rebase(url, params), _encode(data), auth
        )
        return Response(status, text)


def rest_client(*, asynchronous: bool = True) -> Client:
    """A Twilio client for the configured account, base URL and transport."""
    chosen = transport()
    http: HttpClient = _AsyncClient(chosen) if asynchronous else _SyncClient(chosen)
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http)


async def gather_quietly(*aws: Any) -> list[Any]:
    """Run REST calls side by side; exceptions are returned, not raised."""
    return list(await asyncio.gather(*aws, return_exceptions=True))
