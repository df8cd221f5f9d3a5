"""The line's geography and people: branches, municipalities, volunteers, managers.

Nothing here is about callers: callers have no rows, only anonymous contact records
(``routing.models``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    PHONE = "phone", _("Phone")
    CHAT = "chat", _("Chat")
    MAIL = "mail", _("Mail")


class Role(models.TextChoices):
    """Roles are Django groups of these names (see ``volunteers.roles``)."""

    VOLUNTEER = "volunteer", _("Volunteer")
    COACH = "coach", _("Coach")
    BRANCH_MANAGER = "branch_manager", _("Branch manager")
    NATIONAL_COORDINATOR = "national_coordinator", _("National coordinator")


class Branch(models.Model):
    """A regional branch ("contactlocatie") with its own volunteer pool and roster."""

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    seat_municipality_code = models.CharField(_("seat municipality (CBS code)"), max_length=6)
    population = models.PositiveIntegerField(_("population"), default=0)
    neighbours = models.ManyToManyField(
        "self", symmetrical=True, blank=True, verbose_name=_("neighbouring branches")
    )
    local_phone_number = models.CharField(
        _("local phone number"),
        max_length=20,
        blank=True,
        default="",
        help_text=_("E.164 number callers of this region may dial; empty for none."),
    )
    strict_locality = models.BooleanField(
        _("strict locality"),
        default=False,
        help_text=_("Timed rings instead of the default locality-first routing."),
    )
    ring_home_only_s = models.PositiveIntegerField(
        _("home branch only for (seconds)"),
        default=30,
        help_text=_("With strict locality: callers are offered only to this branch this long."),
    )
    ring_neighbours_until_s = models.PositiveIntegerField(
        _("neighbours only until (seconds)"),
        default=90,
        help_text=_(
            "With strict locality: after this, volunteers of every branch may take the caller."
        ),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        constraints = [
            models.UniqueConstraint(
                fields=["local_phone_number"],
                condition=~models.Q(local_phone_number=""),
                name="branch_local_phone_number_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(ring_neighbours_until_s__gte=models.F("ring_home_only_s")),
                name="branch_rings_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Municipality(models.Model):
    """A municipality (CBS code), served by exactly one branch."""

    code = models.CharField(_("CBS code"), max_length=6, unique=True)
    name = models.CharField(_("name"), max_length=120)
    population = models.PositiveIntegerField(_("population"), default=0)
    safety_region_code = models.CharField(_("safety region"), max_length=4, blank=True)
    safety_region_name = models.CharField(_("safety region name"), max_length=120, blank=True)
    branch = models.ForeignKey(
        Branch, on_delete=models.PROTECT, related_name="municipalities", verbose_name=_("branch")
    )
    neighbours = models.ManyToManyField(
        "self", symmetrical=True, blank=True, verbose_name=_("neighbouring municipalities")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("municipality")
        verbose_name_plural = _("municipalities")

    def __str__(self) -> str:
        return self.name


class Volunteer(models.Model):
    """A volunteer (or coach) of one branch. Callers only ever see ``alias``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="volunteer"
    )
    alias = models.CharField(
        _("alias"), max_length=40, help_text=_("The first name callers see; never the real name.")
    )
    branch = models.ForeignKey(
        Branch, on_delete=models.PROTECT, related_name="volunteers", verbose_name=_("home branch")
    )
    takes_phone = models.BooleanField(_("takes phone calls"), default=True)
    takes_chat = models.BooleanField(_("takes chats"), default=True)
    takes_mail = models.BooleanField(_("takes mail"), default=False)
    chat_limit = models.PositiveSmallIntegerField(
        _("chat limit"),
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text=_("How many chats at once (1–3)."),
    )
    phone_number = models.CharField(
        _("phone number to call"),
        max_length=20,
        blank=True,
        default="",
        help_text=_("The line calls the volunteer here (E.164). Never shown to callers."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["alias"]
        verbose_name = _("volunteer")
        verbose_name_plural = _("volunteers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(chat_limit__gte=1, chat_limit__lte=3),
                name="volunteer_chat_limit_1_to_3",
            )
        ]

    def __str__(self) -> str:
        return f"{self.alias} ({self.branch})"

    @property
    def channels(self) -> list[str]:
        taken = [(self.takes_phone, Channel.PHONE), (self.takes_chat, Channel.CHAT)]
        taken.append((self.takes_mail, Channel.MAIL))
        return [str(channel) for on, channel in taken if on]


class Manager(models.Model):
    """A branch manager (``branch`` set) or a national coordinator (``branch`` empty)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="manager"
    )
    branch = models.ForeignKey(
        Branch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="managers",
        verbose_name=_("branch"),
        help_text=_("Empty for a national coordinator."),
    )

    class Meta:
        verbose_name = _("manager")
        verbose_name_plural = _("managers")

    def __str__(self) -> str:
        return f"{self.user} ({self.branch or _('national')})"
