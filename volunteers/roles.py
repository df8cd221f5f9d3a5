"""Who may do what: roles are Django groups; a branch manager's reach is one branch.

Every view that shows branch data asks :func:`branches_managed_by` or
:func:`can_manage_branch`; there is no other place where branch scope is decided.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.db import transaction
from django.db.models import QuerySet

from volunteers.models import Branch, Manager, Role, Volunteer

AnyUser = AbstractBaseUser | AnonymousUser

# Model permissions each role's group carries (app_label.codename).
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.VOLUNTEER: [],
    Role.COACH: [],
    Role.BRANCH_MANAGER: [
        "volunteers.view_branch",
        "volunteers.view_volunteer",
        "volunteers.change_volunteer",
        "volunteers.add_volunteer",
        "volunteers.view_municipality",
    ],
    Role.NATIONAL_COORDINATOR: [
        "volunteers.view_branch",
        "volunteers.change_branch",
        "volunteers.view_volunteer",
        "volunteers.change_volunteer",
        "volunteers.add_volunteer",
        "volunteers.view_municipality",
        "volunteers.change_municipality",
        "volunteers.view_manager",
        "volunteers.change_manager",
        "volunteers.add_manager",
    ],
}


def roles_ensure() -> None:
    """Create the four role groups with their permissions (idempotent)."""
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=str(role))
        wanted: list[Permission] = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.extend(
                Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)


def has_role(user: Any, role: Role) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if role == Role.NATIONAL_COORDINATOR and user.is_superuser:
        return True
    return bool(user.groups.filter(name=str(role)).exists())


def is_national_coordinator(user: Any) -> bool:
    return has_role(user, Role.NATIONAL_COORDINATOR)


def is_manager(user: Any) -> bool:
    return is_national_coordinator(user) or has_role(user, Role.BRANCH_MANAGER)


def branches_managed_by(user: Any) -> QuerySet[Branch]:
    """All branches for a national coordinator, one for a branch manager, else none."""
    if is_national_coordinator(user):
        return Branch.objects.all()
    if has_role(user, Role.BRANCH_MANAGER):
        return Branch.objects.filter(managers__user=user)
    return Branch.objects.none()


def can_manage_branch(user: Any, branch: Branch) -> bool:
    return branches_managed_by(user).filter(pk=branch.pk).exists()


@transaction.atomic
def role_assign(*, user: Any, role: Role, branch: Branch | None = None) -> None:
    """Give ``user`` a role; managers get their branch scope, volunteers need a profile."""
    roles_ensure()
    user.groups.add(Group.objects.get(name=str(role)))
    if role == Role.BRANCH_MANAGER:
        if branch is None:
            raise ValueError("a branch manager needs a branch")
        Manager.objects.update_or_create(user=user, defaults={"branch": branch})
    elif role == Role.NATIONAL_COORDINATOR:
        Manager.objects.update_or_create(user=user, defaults={"branch": None})
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    elif role in (Role.VOLUNTEER, Role.COACH) and not Volunteer.objects.filter(user=user).exists():
        raise ValueError("a volunteer or coach needs a Volunteer profile first")
