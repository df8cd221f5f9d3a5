"""The registration: a volunteer's anonymous wrap-up of one contact. Structured only.

No free text, by design: every field is a choice from a fixed list, so nothing a caller
said can end up here. It completes the contact's anonymous trail row
(``routing.models.ContactRecord``) and is destroyed with it by the retention job.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Topic(models.TextChoices):
    LONELINESS = "loneliness", _("Loneliness")
    GRIEF = "grief", _("Grief")
    RELATIONSHIPS = "relationships", _("Relationships")
    MENTAL_HEALTH = "mental_health", _("Mental health")
    PHYSICAL_HEALTH = "physical_health", _("Physical health")
    DAY_STRUCTURE = "day_structure", _("Day structure")
    MONEY = "money", _("Money")
    ADDICTION = "addiction", _("Addiction")
    VIOLENCE = "violence", _("Violence")
    MEANING_OF_LIFE = "meaning_of_life", _("Meaning of life")
    OTHER = "other", _("Other")


class AgeBand(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    UNDER_18 = "under_18", _("Under 18")
    AGE_18_29 = "18_29", _("18–29")
    AGE_30_44 = "30_44", _("30–44")
    AGE_45_59 = "45_59", _("45–59")
    AGE_60_74 = "60_74", _("60–74")
    AGE_75_PLUS = "75_plus", _("75+")


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    WOMAN = "woman", _("Woman")
    MAN = "man", _("Man")
    OTHER = "other", _("Other")


class Handover(models.TextChoices):
    NONE = "none", _("No")
    CRISIS_113 = "113", _("To 113 Suicide Prevention")
    EMERGENCY_112 = "112", _("To 112 emergency services")


class Ending(models.TextChoices):
    COMPLETED = "completed", _("Completed together")
    CALLER_ENDED = "caller_ended", _("Caller ended it")
    CALLER_LEFT = "caller_left", _("Caller left without a word")
    VOLUNTEER_ENDED = "volunteer_ended", _("I ended it")
    HANDED_OVER = "handed_over", _("Handed over")
    INAPPROPRIATE = "inappropriate", _("Inappropriate contact")
    SILENT = "silent", _("Silent contact")


class Registration(models.Model):
    """One per contact. Linked to the trail row when routing exposes it."""

    contact_record = models.OneToOneField(
        "routing.ContactRecord",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="registration",
        verbose_name=_("contact record"),
    )
    channel = models.CharField(_("channel"), max_length=8)
    branch = models.ForeignKey(
        "volunteers.Branch",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("answering branch"),
    )
    registered_hour = models.DateTimeField(_("hour registered"), db_index=True)
    #: A list of ``Topic`` values (JSON so the embedded SQLite demo stores it too).
    topics = models.JSONField(_("topics"), default=list)
    age_band = models.CharField(_("age band (estimate)"), max_length=10, choices=AgeBand.choices)
    gender = models.CharField(_("gender (estimate)"), max_length=10, choices=Gender.choices)
    referral_given = models.BooleanField(_("referral given"), default=False)
    handed_over = models.CharField(
        _("handed over"), max_length=4, choices=Handover.choices, default=Handover.NONE
    )
    ending = models.CharField(_("how it ended"), max_length=16, choices=Ending.choices)

    class Meta:
        verbose_name = _("registration")
        verbose_name_plural = _("registrations")

    def __str__(self) -> str:
        return f"{self.channel} {self.registered_hour:%Y-%m-%d %H}h"
