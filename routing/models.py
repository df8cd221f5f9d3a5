"""The anonymous trail: one row per ended contact, what statistics need and nothing else.

No caller identifier, no contact id from the telephony provider, no text, and the start
only to the hour. Live state stays in the routing store and is deleted when the row is
written.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Outcome(models.TextChoices):
    ANSWERED = "answered", _("Answered")
    ABANDONED = "abandoned", _("Caller left before an answer")
    REFUSED = "refused", _("Refused (fair use)")


class ContactRecord(models.Model):
    channel = models.CharField(_("channel"), max_length=8)
    home_branch = models.ForeignKey(
        "volunteers.Branch",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("home branch"),
        help_text=_("Empty for a contact without a region (national)."),
    )
    municipality = models.ForeignKey(
        "volunteers.Municipality",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("municipality chosen by the caller"),
    )
    answering_branch = models.ForeignKey(
        "volunteers.Branch",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answering branch"),
    )
    started_hour = models.DateTimeField(_("hour started"), db_index=True)
    seconds_waited = models.PositiveIntegerField(_("seconds waited"), default=0)
    seconds_talked = models.PositiveIntegerField(_("seconds talked"), default=0)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    left_home = models.BooleanField(_("answered outside the home branch"), default=False)
    overflow_distance = models.PositiveSmallIntegerField(
        _("overflow distance"),
        null=True,
        blank=True,
        help_text=_("0 home branch, 1 neighbouring branch, 2 further; empty if unanswered."),
    )

    class Meta:
        verbose_name = _("contact record")
        verbose_name_plural = _("contact records")
        indexes = [models.Index(fields=["home_branch", "started_hour"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.started_hour:%Y-%m-%d %H}h {self.outcome}"
