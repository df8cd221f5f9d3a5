"""``listenline check``: the phone line cannot work without its Twilio settings.

Warnings, not errors: an error would stop every management command (``migrate`` runs
the checks too) on a machine that only serves chat.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register


@register("telephony")
def twilio_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if not settings.TWILIO_AUTH_TOKEN:
        problems.append(
            Warning(
                "TWILIO_AUTH_TOKEN is not set: every Twilio webhook answers 403.",
                hint="Set TWILIO_AUTH_TOKEN (or TWILIO_AUTH_TOKEN_FILE) to the account's "
                "auth token; see docs/TELEPHONY.md.",
                id="telephony.W001",
            )
        )
    if not settings.PUBLIC_BASE_URL:
        problems.append(
            Warning(
                "PUBLIC_BASE_URL is not set: Twilio signatures cannot be verified.",
                hint="Set PUBLIC_BASE_URL to the https:// address configured at Twilio.",
                id="telephony.W002",
            )
        )
    if not settings.TWILIO_ACCOUNT_SID:
        problems.append(
            Warning(
                "TWILIO_ACCOUNT_SID is not set: the line cannot call volunteers.",
                id="telephony.W003",
            )
        )
    return problems
