"""Twilio webhooks (mounted under /twilio/).

Configure at Twilio (all POST): Voice URL ``voice/incoming/``, status callback
``voice/status/``, fallback URL ``voice/fallback/``. The others are referenced from our
own TwiML. ``ping/`` exists only with ``LISTENLINE_BENCHMARK_VIEW=1`` (the benchmark's
baseline).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.urls import URLPattern, URLResolver, path

from telephony import views

app_name = "telephony"
urlpatterns: list[URLPattern | URLResolver] = [
    path("voice/incoming/", views.voice_incoming, name="voice-incoming"),
    path("voice/region/", views.voice_region, name="voice-region"),
    path("voice/hold/", views.voice_hold, name="voice-hold"),
    path("voice/status/", views.voice_status, name="voice-status"),
    path("voice/fallback/", views.voice_fallback, name="voice-fallback"),
    path("voice/volunteer/answer/", views.volunteer_answer, name="volunteer-answer"),
    path("voice/volunteer/accept/", views.volunteer_accept, name="volunteer-accept"),
]

if (
    getattr(settings, "TELEPHONY_BENCHMARK_VIEW", False)
    or os.environ.get("LISTENLINE_BENCHMARK_VIEW") == "1"
):
    urlpatterns.append(path("ping/", views.benchmark_ping, name="benchmark-ping"))
