"""The allowlist: the only Twilio request fields the app copies.

Twilio sends the caller's number in ``From``/``Caller`` and often a guessed city, state,
postcode and country (``FromCity``, ``CallerZip``, ...), ``CallerName`` with CNAM lookup
and ``ForwardedFrom``. None of it may be stored, logged, queued or used as a Redis key.
:func:`call_fields` copies only what the line needs; :func:`caller_number` reads the
caller's number once, for the fair-use hash, and is called from exactly one place
(``telephony.services.call_incoming``).

Unknown parameters are ignored, so a signed request with fields Twilio added later still
works.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: CallStatus values after which a call leg is over.
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress", *TERMINAL_STATUSES})

_SID = re.compile(r"^CA[0-9A-Za-z]{1,40}$")
_DIGITS = re.compile(r"^[0-9*#]{0,20}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,15}$")
_LINE_NUMBER = re.compile(r"^\+?[0-9 ]{2,20}$")

#: Numbers carriers send for a withheld caller id: never a fair-use identity.
WITHHELD = frozenset({"+266696687", "+86282452253", "+7378742833", "+2562533", "+8656696"})


@dataclass(frozen=True)
class CallFields:
    """What the line keeps of one Twilio request. Nothing here identifies the caller."""

    call_sid: str = ""
    call_status: str = ""
    direction: str = ""
    dialled: str = ""  # To/Called: one of the line's own numbers on an incoming call
    digits: str = ""
    call_duration: int | None = None
    timestamp: str = ""


def _int_or_none(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def call_fields(params: Mapping[str, Any]) -> CallFields:
    """Copy the allowlisted fields; malformed values become empty, never errors."""

    def get(name: str) -> str:
        value = params.get(name, "")
        return value if isinstance(value, str) else ""

    sid = get("CallSid")
    status = get("CallStatus")
    digits = get("Digits")
    dialled = get("To") or get("Called")
    return CallFields(
        call_sid=sid if _SID.match(sid) else "",
        call_status=status if status in CALL_STATUSES else "",
        direction=get("Direction")[:32],
        dialled=dialled if _LINE_NUMBER.match(dialled) else "",
        digits=digits if _DIGITS.match(digits) else "",
        call_duration=_int_or_none(get("CallDuration") or get("Duration")),
        timestamp=get("Timestamp")[:64],
    )


def caller_number(params: Mapping[str, Any]) -> str | None:
    """The caller's E.164 number for the fair-use hash, or None when withheld/unusable.

    Read once per call and handed straight to routing's fair-use check, which keeps only
    an HMAC under a daily-rotating key. Withheld numbers are not an identity: counting
    them would make all anonymous callers share one limit.
    """
    raw = params.get("From") or params.get("Caller") or ""
    if not isinstance(raw, str) or not _E164.match(raw) or raw in WITHHELD:
        return None
    return raw
