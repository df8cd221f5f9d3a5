from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def line(request: HttpRequest) -> dict[str, Any]:
    """Numbers every page may show: the line's own and the crisis line's."""
    return {
        "line_phone_number": settings.LINE_PHONE_NUMBER,
        "crisis_phone_number": settings.CRISIS_PHONE_NUMBER,
    }
