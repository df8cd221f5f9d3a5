from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from volunteers.models import Branch, Volunteer
from volunteers.roles import branches_managed_by, can_manage_branch

pytestmark = pytest.mark.django_db


def test_anonymous_users_are_sent_to_login(client: Client, utrecht: Branch) -> None:
    for url in ("/console/", "/manage/", "/manage/utrecht/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_branch_manager_sees_only_their_own_branch(
    client: Client, mia: Any, eemland: Branch
) -> None:
    client.force_login(mia)
    assert client.get("/manage/utrecht/").status_code == 200
    assert client.get("/manage/eemland/").status_code == 403
    index = client.get("/manage/").content.decode()
    assert "/manage/utrecht/" in index and "/manage/eemland/" not in index
    assert [b.slug for b in branches_managed_by(mia)] == ["utrecht"]
    assert not can_manage_branch(mia, eemland)


def test_volunteer_gets_403_on_manager_pages(client: Client, anna: Volunteer) -> None:
    client.force_login(anna.user)
    assert client.get("/manage/").status_code == 403
    assert client.get("/manage/utrecht/").status_code == 403
    assert client.get("/console/").status_code == 200


def test_national_coordinator_sees_every_branch_and_the_admin(client: Client, noor: Any) -> None:
    client.force_login(noor)
    assert client.get("/manage/eemland/").status_code == 200
    assert client.get("/manage/").content.decode().count("/manage/") >= 30
    assert client.get("/admin/").status_code == 200


def test_branch_manager_and_volunteer_have_no_admin(
    client: Client, mia: Any, anna: Volunteer
) -> None:
    mia.is_staff = True
    mia.save()
    client.force_login(mia)
    assert client.get("/admin/").status_code == 302
    client.force_login(anna.user)
    assert client.get("/admin/").status_code == 302


def test_unknown_branch_is_404(client: Client, noor: Any) -> None:
    client.force_login(noor)
    assert client.get("/manage/atlantis/").status_code == 404


def test_manager_pages_stay_within_a_query_budget(
    client: Client, mia: Any, anna: Volunteer, bram: Volunteer, django_assert_max_num_queries: Any
) -> None:
    client.force_login(mia)
    with django_assert_max_num_queries(12):
        assert client.get("/manage/utrecht/").status_code == 200


def test_pages_render_in_dutch_by_default_and_english_on_request(client: Client) -> None:
    dutch = client.get("/")
    assert dutch.status_code == 200
    assert '<html lang="nl">' in dutch.content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="en">' in english.content.decode()
    assert client.get("/chat/").status_code == 200


def test_every_page_has_a_strict_content_security_policy(client: Client) -> None:
    policy = client.get("/")["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_branch_manager_changes_a_volunteer_of_their_branch(
    client: Client, mia: Any, anna: Volunteer
) -> None:
    client.force_login(mia)
    url = f"/manage/utrecht/volunteers/{anna.pk}/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"alias": "Annie", "takes_chat": "on", "chat_limit": 3})
    assert response.status_code == 302
    anna.refresh_from_db()
    assert (anna.alias, anna.chat_limit, anna.takes_phone) == ("Annie", 3, False)


def test_branch_manager_cannot_change_another_branchs_volunteer(
    client: Client, mia: Any, carla: Volunteer
) -> None:
    client.force_login(mia)
    assert client.post(f"/manage/eemland/volunteers/{carla.pk}/", {"alias": "X"}).status_code == 403
    # Nor through their own branch's address.
    assert client.post(f"/manage/utrecht/volunteers/{carla.pk}/", {"alias": "X"}).status_code == 404
    carla.refresh_from_db()
    assert carla.alias == "Carla"


def test_an_absurd_chat_limit_is_refused_and_changes_nothing(
    client: Client, mia: Any, anna: Volunteer
) -> None:
    client.force_login(mia)
    response = client.post(
        f"/manage/utrecht/volunteers/{anna.pk}/", {"alias": "Anna", "chat_limit": 9}
    )
    assert response.status_code == 400
    anna.refresh_from_db()
    assert anna.chat_limit == 2
