"""Shared fixtures: the real geography and a few named personas.

Personas (healthchecks-style): Anna and Bram volunteer in Utrecht, Carla in the
neighbouring Eemland; Mia manages Utrecht; Noor is the national coordinator.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from volunteers.geography import geography_load
from volunteers.models import Branch, Role, Volunteer
from volunteers.roles import role_assign

PASSWORD = "correct-horse-battery"  # noqa: S105


@pytest.fixture
def geography(db: Any) -> None:
    """The 30 branches and 342 municipalities (loaded once per database state)."""
    if not Branch.objects.exists():
        geography_load()


@pytest.fixture
def utrecht(geography: None) -> Branch:
    return Branch.objects.get(slug="utrecht")


@pytest.fixture
def eemland(geography: None) -> Branch:
    return Branch.objects.get(slug="eemland")


def make_user(username: str) -> Any:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    return user


def make_volunteer(username: str, alias: str, branch: Branch, **fields: Any) -> Volunteer:
    user = make_user(username)
    volunteer = Volunteer.objects.create(user=user, alias=alias, branch=branch, **fields)
    role_assign(user=user, role=Role.VOLUNTEER)
    return volunteer


@pytest.fixture
def anna(utrecht: Branch) -> Volunteer:
    return make_volunteer("anna", "Anna", utrecht)


@pytest.fixture
def bram(utrecht: Branch) -> Volunteer:
    return make_volunteer("bram", "Bram", utrecht)


@pytest.fixture
def carla(eemland: Branch) -> Volunteer:
    return make_volunteer("carla", "Carla", eemland)


@pytest.fixture
def mia(utrecht: Branch) -> Any:
    """Branch manager of Utrecht."""
    user = make_user("mia")
    role_assign(user=user, role=Role.BRANCH_MANAGER, branch=utrecht)
    return user


@pytest.fixture
def noor(geography: None) -> Any:
    """National coordinator."""
    user = make_user("noor")
    role_assign(user=user, role=Role.NATIONAL_COORDINATOR)
    return user
