"""Websocket routes of the chat: the caller's page and the volunteer's console.

Only the console reads the session cookie (``AuthMiddlewareStack``). The caller's socket
gets no cookie parsing, session or user: a caller has none, and ten thousand waiting
callers do not each carry a lazy session and user object for the life of their socket.
Both are behind the origin check (``listenline/asgi.py``)."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from django.urls import URLPattern, URLResolver, path

from chat.console_consumer import ConsoleConsumer
from chat.consumers import CallerConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/chat/", CallerConsumer.as_asgi()),
    path("ws/console/", AuthMiddlewareStack(ConsoleConsumer.as_asgi())),
]
