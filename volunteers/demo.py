"""Demo accounts for the embedded demo (``listenline demo``). Idempotent.

The password is the same for every demo account and printed at start-up; ``listenline
serve`` refuses to start while any account still has it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from volunteers.models import Branch, Role, Volunteer
from volunteers.roles import role_assign, roles_ensure

DEMO_PASSWORD = "luisterlijn-demo"  # noqa: S105 - printed on purpose, refused by serve


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    branch_slug: str | None
    alias: str | None = None
    takes_phone: bool = True
    phone_number: str = ""


DEMO_ACCOUNTS = (
    DemoAccount("coordinator", Role.NATIONAL_COORDINATOR, None),
    DemoAccount("manager.utrecht", Role.BRANCH_MANAGER, "utrecht"),
    DemoAccount("anna", Role.VOLUNTEER, "utrecht", alias="Anna", phone_number="+3197010000001"),
    DemoAccount("bram", Role.VOLUNTEER, "utrecht", alias="Bram", phone_number="+3197010000002"),
    DemoAccount("carla", Role.VOLUNTEER, "eemland", alias="Carla", phone_number="+3197010000003"),
)
#: The demo's local number for Utrecht (a Dutch test range), so the simulator can dial it.
DEMO_BRANCH_NUMBERS = {"utrecht": "+31301110000"}


@transaction.atomic
def demo_seed() -> list[DemoAccount]:
    """Create the demo accounts that are missing; existing ones are left as they are."""
    roles_ensure()
    for slug, number in DEMO_BRANCH_NUMBERS.items():
        Branch.objects.filter(slug=slug, local_phone_number="").update(local_phone_number=number)
    user_model = get_user_model()
    for account in DEMO_ACCOUNTS:
        user, created = user_model.objects.get_or_create(username=account.username)
        if not created:
            continue
        user.set_password(DEMO_PASSWORD)
        user.save()
        branch = Branch.objects.get(slug=account.branch_slug) if account.branch_slug else None
        if account.role in (Role.VOLUNTEER, Role.COACH):
            assert branch is not None and account.alias is not None
            Volunteer.objects.create(
                user=user,
                alias=account.alias,
                branch=branch,
                chat_limit=2,
                takes_phone=account.takes_phone,
                phone_number=account.phone_number,
            )
        role_assign(user=user, role=account.role, branch=branch)
    return list(DEMO_ACCOUNTS)


def demo_password_in_use() -> list[str]:
    """Usernames that still log in with the printed demo password."""
    user_model = get_user_model()
    names = [a.username for a in DEMO_ACCOUNTS]
    return [
        u.username
        for u in user_model.objects.filter(username__in=names)
        if u.check_password(DEMO_PASSWORD)
    ]
