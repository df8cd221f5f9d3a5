"""Websocket routes. Each capability adds its consumers in its own module."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from chat.routing import websocket_urlpatterns as chat_patterns

websocket_urlpatterns: list[URLPattern | URLResolver] = [*chat_patterns]
