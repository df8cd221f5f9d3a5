"""The one exception family of routing: a refused transition that changed nothing.

Every refusal carries a stable ``code`` (for consumers and webhooks to map to a reply)
and a human-readable message. A refused call leaves the store exactly as it was.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

CODES = {
    "unknown_contact": "There is no live contact with this id.",
    "unknown_volunteer": "This volunteer is not known to routing (not active or not registered).",
    "unknown_branch": "There is no branch with this slug.",
    "unknown_municipality": "There is no municipality with this code.",
    "unknown_channel": "Routing knows no such channel.",
    "channel_not_taken": "This volunteer does not take contacts on this channel.",
    "unknown_presence": "A presence is 'off_duty', 'available' or 'paused'.",
    "bad_capacity": "A chat limit is a whole number from 1 to 3.",
    "wrong_branch": "The branch given does not match the one on record.",
    "not_your_offer": "This contact is not offered to this volunteer.",
    "offer_expired": "The offer has expired and is no longer open.",
    "not_active": "The contact is not in conversation.",
    "not_in_wrap_up": "The contact is not in wrap-up with this volunteer.",
    "contact_closed": "The contact has already ended.",
    "fair_use": "The fair-use limit for this caller has been reached.",
}


class TransitionRefused(Exception):
    """A state change that is not allowed now; nothing was changed."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        base = CODES.get(code, code)
        self.message = f"{base} ({detail})" if detail else base
        super().__init__(f"{code}: {self.message}")


class FairUseRefused(TransitionRefused):
    """The caller has reached the fair-use limit; ``user_message`` is the kind text to say."""

    def __init__(self, user_message: str | None = None) -> None:
        super().__init__("fair_use")
        self.user_message = user_message or str(DEFAULT_FAIR_USE_MESSAGE)


DEFAULT_FAIR_USE_MESSAGE = _(
    "You have already spoken with us several times today. So that everyone can get "
    "through, we can't take another conversation from this number today. Please try "
    "again tomorrow. If you are in crisis, call 113."
)
