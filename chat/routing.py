"""Websocket routes of the chat: the caller's page and the volunteer's console."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

websocket_urlpatterns: list[URLPattern | URLResolver] = []
