"""Saving a wrap-up: validated structured fields only, one row per contact."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from registrations.models import AgeBand, Ending, Gender, Handover, Registration, Topic


class RegistrationRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def _hour(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(tz=dt.UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def registration_create(
    *,
    channel: str,
    branch_id: int,
    topics: Sequence[str],
    age_band: str,
    gender: str,
    referral_given: bool,
    handed_over: str,
    ending: str,
    contact_record_id: int | None = None,
) -> Registration:
    """Store one registration; every value must come from its fixed list."""
    if not topics or any(t not in Topic.values for t in topics) or len(set(topics)) != len(topics):
        raise RegistrationRefused("invalid", "Topics come from the fixed list, at least one.")
    checks: list[tuple[str, Any]] = [
        (age_band, AgeBand.values),
        (gender, Gender.values),
        (handed_over, Handover.values),
        (ending, Ending.values),
        (channel, ["chat", "phone", "mail"]),
    ]
    if any(value not in allowed for value, allowed in checks):
        raise RegistrationRefused("invalid", "A field holds a value outside its list.")
    with transaction.atomic():
        return Registration.objects.create(
            contact_record_id=contact_record_id,
            channel=channel,
            branch_id=branch_id,
            registered_hour=_hour(),
            topics=list(topics),
            age_band=age_band,
            gender=gender,
            referral_given=referral_given,
            handed_over=handed_over,
            ending=ending,
        )


def registration_link(*, registration: Registration, contact_record_id: int) -> None:
    """Complete the contact's trail row with its registration (one each, at most)."""
    Registration.objects.filter(pk=registration.pk, contact_record__isnull=True).update(
        contact_record_id=contact_record_id
    )
    registration.contact_record_id = contact_record_id
