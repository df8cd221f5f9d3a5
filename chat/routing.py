"""Websocket routes of the chat: the caller's page and the volunteer's console."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from chat.console_consumer import ConsoleConsumer
from chat.consumers import CallerConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/chat/", CallerConsumer.as_asgi()),
    path("ws/console/", ConsoleConsumer.as_asgi()),
]
