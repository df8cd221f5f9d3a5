"""The middleware stack, native to the event loop, and the Content-Security-Policy.

Under Daphne every request is async. Django's own middleware (``MiddlewareMixin``) then
runs each ``process_request`` and ``process_response`` in a worker thread through
``sync_to_async``: two thread hops per middleware per request, about 3.5 ms of CPU per
request on the 2-core development VM with our nine (``benchmarks/webhooks.py``; docs/
TELEPHONY.md, "Where the time went"). A sync-only middleware in the chain costs a hop
into a thread and one back out around everything below it.

The classes here are Django's middleware with :class:`InlineHooks` mixed in: a hook that
only reads and writes the request and response in memory runs in the event loop; a hook
that may reach the database (saving a touched session, storing messages, a CSRF check
that may render a failure page) still runs in the request's thread, as Django would run
it. If a hook here ever touched the database in the loop, Django would refuse with
``SynchronousOnlyOperation`` rather than block the loop. Under a sync handler (the test
``Client``) they behave exactly as Django's.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, locale, security
from django.utils.deprecation import MiddlewareMixin

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class InlineHooks:
    """Run a ``MiddlewareMixin`` middleware's hooks in the event loop under ASGI.

    A hook goes to the request's thread (as Django runs every hook) when
    :meth:`request_in_thread` or :meth:`response_in_thread` says it may reach the
    database; otherwise it runs in the loop.
    """

    get_response: Any

    def request_in_thread(self, request: HttpRequest) -> bool:
        return False

    def response_in_thread(self, request: HttpRequest) -> bool:
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        process_request = getattr(self, "process_request", None)
        if process_request is not None:
            if self.request_in_thread(request):
                response = await sync_to_async(process_request, thread_sensitive=True)(request)
            else:
                response = process_request(request)
        response = response or await self.get_response(request)
        process_response = getattr(self, "process_response", None)
        if process_response is None:
            return response
        if self.response_in_thread(request):
            return await sync_to_async(process_response, thread_sensitive=True)(request, response)
        return process_response(request, response)


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    """HTTPS redirect and security headers: settings and headers only."""


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    """A lazy session per request; saving a session that was used needs the database."""

    def response_in_thread(self, request: HttpRequest) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (
            bool(session.accessed) or settings.SESSION_SAVE_EVERY_REQUEST
        )


class LocaleMiddleware(InlineHooks, locale.LocaleMiddleware):
    """Language from the cookie or Accept-Language: headers and cached catalogues only."""


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    """Host check, slash redirects, Content-Length: URL resolution in memory."""


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """The CSRF cookie is read and set in memory. The check itself runs in the event
    loop only where it cannot fail (an exempt view, a safe method); an unsafe request
    to a protected view is checked in the request's thread, because a refusal renders
    a failure page."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            # The handler adapts process_view by its kind: a coroutine function runs
            # in the loop, a plain one in a thread.
            self.process_view = self._process_view_async  # type: ignore[method-assign,assignment]

    async def _process_view_async(
        self, request: HttpRequest, callback: Any, args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        check = super().process_view
        if getattr(callback, "csrf_exempt", False) or request.method in SAFE_METHODS:
            return check(request, callback, args, kwargs)
        return await sync_to_async(check, thread_sensitive=True)(request, callback, args, kwargs)

    def request_in_thread(self, request: HttpRequest) -> bool:
        # With CSRF_USE_SESSIONS the secret lives in the session (the database).
        return bool(settings.CSRF_USE_SESSIONS)

    def response_in_thread(self, request: HttpRequest) -> bool:
        return bool(settings.CSRF_USE_SESSIONS)


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    """``request.user`` is lazy: the session and user are read where they are used."""


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    """Storage is created lazily; storing messages that were read or added touches the
    session (the database)."""

    def response_in_thread(self, request: HttpRequest) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and bool(storage.used or storage.added_new)


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    """One header."""


class ContentSecurityPolicyMiddleware(InlineHooks, MiddlewareMixin):
    """A strict Content-Security-Policy (our own origin only, no inline script or style)
    and a Permissions-Policy on every response that does not set its own."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = POLICY
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response
