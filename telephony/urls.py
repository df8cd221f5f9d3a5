"""Twilio webhooks (mounted under /twilio/)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "telephony"
urlpatterns: list[URLPattern | URLResolver] = []
