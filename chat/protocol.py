"""The wire protocol: one schema per client message type, checked on arrival.

A schema is a mapping of field name → ``Field``. ``parse`` turns a raw text frame into
``(type, fields)`` or raises ``ProtocolError`` with a stable code; nothing else in the
chat sees an unchecked frame. ``docs/protocol.md`` documents every type and code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_FRAME_BYTES = 16_384
MAX_TEXT = 4000
RATE_LIMIT = 20  # client frames ...
RATE_WINDOW_S = 10.0  # ... per this many seconds (``CHAT_RATE_WINDOW_S`` may override),
# per connection and per conversation (a volunteer: per chat they may hold); see
# chat/consumer_base.py

#: Close codes (besides 1000 normal and 1009 frame too big).
CLOSE_ENDED = 4000  # the conversation has ended; do not reconnect
CLOSE_UNAUTHENTICATED = 4401  # console: not logged in
CLOSE_FORBIDDEN = 4403  # console: the account has no active volunteer profile
CLOSE_RATE_LIMITED = 4429  # far over the rate limit (3× in one window)
CLOSE_FRAME_TOO_BIG = 1009

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CONTACT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
MUNICIPALITY_RE = re.compile(r"^GM\d{4}$")

TOPICS = (
    "loneliness",
    "grief",
    "relationships",
    "mental_health",
    "physical_health",
    "day_structure",
    "money",
    "addiction",
    "violence",
    "meaning_of_life",
    "other",
)
AGE_BANDS = ("unknown", "under_18", "18_29", "30_44", "45_59", "60_74", "75_plus")
GENDERS = ("unknown", "woman", "man", "other")
HANDOVERS = ("none", "113", "112")
ENDINGS = (
    "completed",
    "caller_ended",
    "caller_left",
    "volunteer_ended",
    "handed_over",
    "inappropriate",
    "silent",
)
CHANNELS = ("phone", "chat")
PRESENCES = ("available", "paused", "off_duty")


class ProtocolError(Exception):
    """A refused frame. ``code`` is stable (see docs/protocol.md); nothing was changed."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.ref = ref


@dataclass(frozen=True)
class Field:
    check: Callable[[Any], bool]
    describe: str
    required: bool = True


def _str(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))


def _choice(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in options


def _int_min(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _text(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v.strip()) and len(v) <= MAX_TEXT


def _topics(v: Any) -> bool:
    return (
        isinstance(v, list)
        and 0 < len(v) <= len(TOPICS)
        and all(isinstance(t, str) and t in TOPICS for t in v)
        and len(set(v)) == len(v)
    )


def _last_seen(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and len(v) <= 10
        and all(isinstance(k, str) and CONTACT_RE.match(k) and _int_min(0)(n) for k, n in v.items())
    )


def _optional_municipality(v: Any) -> bool:
    return v is None or (isinstance(v, str) and bool(MUNICIPALITY_RE.match(v)))


MSG_ID = Field(_str(ID_RE), "a client id: 1–64 of A–Z a–z 0–9 _ -")
CONTACT = Field(_str(CONTACT_RE), "a contact id")
TEXT = Field(_text, f"text of 1–{MAX_TEXT} characters")
SEQ = Field(_int_min(0), "a sequence number (integer ≥ 0)")

Schema = Mapping[str, Field]

#: Frames the caller's page may send on /ws/chat/.
CALLER_SCHEMAS: dict[str, Schema] = {
    "start": {
        "municipality": Field(_optional_municipality, "a CBS code GM0000 or null", required=False)
    },
    "resume": {"token": Field(_str(TOKEN_RE), "the conversation token"), "last_seq": SEQ},
    "message": {"id": MSG_ID, "text": TEXT},
    "typing": {"active": Field(_bool, "true or false")},
    "seen": {"upto": SEQ},
    "end": {},
    "ping": {},
}

#: Frames the volunteer console may send on /ws/console/.
CONSOLE_SCHEMAS: dict[str, Schema] = {
    "sync": {
        "last_seq": Field(
            _last_seen, "an object of contact id → last sequence seen", required=False
        )
    },
    "presence": {
        "channel": Field(_choice(CHANNELS), "phone or chat"),
        "state": Field(_choice(PRESENCES), "available, paused or off_duty"),
    },
    "offer.accept": {"contact_id": CONTACT},
    "offer.decline": {"contact_id": CONTACT},
    "message": {"contact_id": CONTACT, "id": MSG_ID, "text": TEXT},
    "typing": {"contact_id": CONTACT, "active": Field(_bool, "true or false")},
    "seen": {"contact_id": CONTACT, "upto": SEQ},
    "contact.end": {"contact_id": CONTACT},
    "contact.handover": {
        "contact_id": CONTACT,
        "to": Field(_choice(("113", "112")), "113 or 112", required=False),
    },
    "wrapup": {
        "contact_id": CONTACT,
        "topics": Field(_topics, "a non-empty list of distinct topics from the fixed list"),
        "age_band": Field(_choice(AGE_BANDS), "an age band"),
        "gender": Field(_choice(GENDERS), "a gender"),
        "referral_given": Field(_bool, "true or false"),
        "handed_over": Field(_choice(HANDOVERS), "none, 113 or 112"),
        "ending": Field(_choice(ENDINGS), "how it ended"),
    },
    "ping": {},
}


def parse(raw: str | bytes | None, schemas: Mapping[str, Schema]) -> tuple[str, dict[str, Any]]:
    """Check one frame against its type's schema; extra fields are refused too."""
    if raw is None or isinstance(raw, bytes):
        raise ProtocolError("malformed", "Frames are JSON text.")
    if len(raw.encode("utf-8")) > MAX_FRAME_BYTES:
        raise ProtocolError("too_big", f"A frame is at most {MAX_FRAME_BYTES} bytes.")
    try:
        frame = json.loads(raw)
    except ValueError:
        raise ProtocolError("malformed", "The frame is not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError("malformed", "A frame is a JSON object with a string 'type'.")
    kind = frame.pop("type")
    ref = frame.get("id") if isinstance(frame.get("id"), str) else None
    schema = schemas.get(kind)
    if schema is None:
        raise ProtocolError("unknown_type", f"Unknown message type {kind[:40]!r}.", ref)
    extra = set(frame) - set(schema)
    if extra:
        raise ProtocolError(
            "invalid", f"Unexpected field(s): {', '.join(sorted(extra))[:80]}.", ref
        )
    for name, field in schema.items():
        if name not in frame:
            if field.required:
                raise ProtocolError("invalid", f"'{name}' is required: {field.describe}.", ref)
            continue
        if not field.check(frame[name]):
            if name == "text" and isinstance(frame[name], str) and len(frame[name]) > MAX_TEXT:
                raise ProtocolError("too_long", f"A message is at most {MAX_TEXT} characters.", ref)
            raise ProtocolError("invalid", f"'{name}' must be {field.describe}.", ref)
    return kind, frame


class RateLimiter:
    """A sliding window of frame arrival times, per connection."""

    def __init__(self, limit: int = RATE_LIMIT, window_s: float = RATE_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: list[float] = []

    def hit(self, now: float) -> int:
        """Record a frame; return how many arrived in the window, this one included."""
        cutoff = now - self.window_s
        self._times = [t for t in self._times if t > cutoff]
        self._times.append(now)
        return len(self._times)


def error(code: str, message: str, ref: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref:
        out["ref"] = ref
    return out
