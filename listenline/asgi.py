"""ASGI entry point: Django over HTTP, Channels consumers over websockets, served by Daphne."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listenline.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
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


router = ProtocolTypeRouter(
    {
        # Static files are served by the app itself (the demo has no proxy); production
        # puts a proxy in front that may serve them from STATIC_ROOT instead.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
application = RoutingTicker(router)
