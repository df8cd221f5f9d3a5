"""ASGI entry point: Django over HTTP, Channels consumers over websockets, served by Daphne."""

from __future__ import annotations

import gc
import inspect
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listenline.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from asgiref.sync import ThreadSensitiveContext  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from listenline.websocket_urls import websocket_urlpatterns  # noqa: E402
from routing.ticker import ensure_ticker_started  # noqa: E402


class RoutingTicker:
    """Starts the routing ticker (offer expiry, drop grace, strict rings) in the server's
    event loop on its first connection. Every process ticks; every step is atomic."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if settings.ROUTING["TICKER"]:
            ensure_ticker_started()
        return await self.app(scope, receive, send)


class RequestThreads:
    """Lends every HTTP request a thread kept from earlier requests for its sync work.

    Django's ASGI handler runs a request's synchronous parts (the request signals,
    closing the response, sync views and middleware, ORM calls) in a thread of the
    request's own, started for it and joined after it: two thread starts per request,
    together about 0.4 ms of CPU on the development VM (docs/TELEPHONY.md, "Where the
    time went"). Here a request borrows an idle single-thread executor for its whole life
    and gives it back at the end, so Django's guarantee holds (all of one request's
    sync code on one thread, no other request's code on that thread meanwhile) without
    the thread churn. Django's own per-request context then finds this one and adds
    nothing. Database connections behave as under a threaded WSGI server: closed or
    kept per ``CONN_MAX_AGE`` by the request signals, which still run in that thread.
    """

    #: ``ThreadSensitiveContext(executor=...)`` (asgiref documents reusing the executor
    #: "for example in a pool"); an older asgiref without it keeps Django's way.
    supported = "executor" in inspect.signature(ThreadSensitiveContext).parameters

    def __init__(self, app: Any, *, keep: int = 16) -> None:
        self.app = app
        self.keep = keep
        self.idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] != "http" or not self.supported:
            return await self.app(scope, receive, send)
        executor = self.idle.pop() if self.idle else self._executor()
        try:
            async with ThreadSensitiveContext(executor=executor):  # type: ignore[call-arg]
                return await self.app(scope, receive, send)
        finally:
            # Every sync call of the request has returned by now: sync_to_async waits
            # for its thread even when the request is cancelled.
            if len(self.idle) < self.keep:
                self.idle.append(executor)
            else:
                executor.shutdown(wait=False)

    @staticmethod
    def _executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")


router = ProtocolTypeRouter(
    {
        # Static files are served by the app itself (the demo has no proxy); production
        # puts a proxy in front that may serve them from STATIC_ROOT instead.
        "http": RequestThreads(ASGIStaticFilesHandler(django_asgi_app)),
        # Each route adds the middleware it needs (the console: the session cookie).
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
application = RoutingTicker(router)

# Modules, settings, URL patterns and templates loaded so far live as long as the
# process. Left in the collector's oldest generation, every full collection walked them
# all: 70-80 ms with the event loop stopped, a few times a minute under load, which was
# the p99 of every request (docs/TELEPHONY.md, "Where the time went"). Frozen, they are
# never walked again; what requests create is collected as before.
gc.collect()
gc.freeze()
# Young collections every 20,000 (not 700) new objects, the middle generation every 20 of
# those. A server allocates in bursts (Daphne pings thousands of idle sockets in one
# sweep; a queue refresh reads thousands of places): with the default thresholds what a
# burst holds for a few milliseconds outlived two collections and was promoted to the
# oldest generation, which then needed a full pass (about a second with 10,000 sockets)
# every half minute of idling. Most of it is now garbage before anyone looks
# (benchmarks/chat_idle.py; docs/ARCHITECTURE.md, "Chat relay").
gc.set_threshold(20_000, 20, 10)
