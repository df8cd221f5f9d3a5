"""Twilio webhook signatures: the only door into the telephony views.

Twilio signs every webhook with the account's auth token over the exact URL it requested
plus the sorted POST parameters (``X-Twilio-Signature``). We rebuild that URL from
``settings.PUBLIC_BASE_URL`` (the address configured at Twilio) and the request's path and
query, never from ``Host`` or ``X-Forwarded-*``: those are the caller's to choose.

Guarantees of :func:`twilio_webhook`:

* without ``TWILIO_AUTH_TOKEN`` every webhook answers 403;
* a missing, wrong or tampered signature answers 403 before the view runs: nothing is
  written and nothing of the request is logged;
* the view itself never sees the raw parameters, only the allowlisted
  :class:`telephony.fields.CallFields` (and, for the incoming call, the caller's number
  once, for the fair-use hash).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "HTTP_X_TWILIO_SIGNATURE"

AsyncView = Callable[..., Coroutine[Any, Any, HttpResponse]]


def public_url(request: HttpRequest) -> str:
    """The URL Twilio requested, as configured: public origin + path + raw query."""
    parts = urlsplit(settings.PUBLIC_BASE_URL)
    url = f"{parts.scheme}://{parts.netloc}{request.path}"
    query = request.META.get("QUERY_STRING", "")
    return f"{url}?{query}" if query else url


def signature_valid(*, token: str, url: str, params: Any, signature: str) -> bool:
    """True when ``signature`` is Twilio's HMAC-SHA1 of ``url`` and ``params``."""
    if not token or not signature:
        return False
    return bool(RequestValidator(token).validate(url, params, signature))


def request_signed(request: HttpRequest) -> bool:
    """Whether a request carries a valid Twilio signature for our public URL."""
    token = settings.TWILIO_AUTH_TOKEN
    if not token or not settings.PUBLIC_BASE_URL or request.method != "POST":
        return False
    signature = request.META.get(SIGNATURE_HEADER, "")
    return signature_valid(
        token=token, url=public_url(request), params=request.POST, signature=signature
    )


def twilio_webhook(view: AsyncView) -> AsyncView:
    """Guard an async view: 403 (and nothing else) unless Twilio signed the request."""

    @functools.wraps(view)
    async def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request_signed(request):
            return HttpResponseForbidden(b"", content_type="text/plain")
        return await view(request, *args, **kwargs)

    return csrf_exempt(guarded)  # type: ignore[return-value]
