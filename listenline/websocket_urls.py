"""Websocket routes. Each capability adds its consumers here (chat, console)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

websocket_urlpatterns: list[URLPattern | URLResolver] = []
