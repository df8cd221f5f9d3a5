"""Pages: thin views that render templates; rules live in services and ``volunteers.roles``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from volunteers.forms import VolunteerForm
from volunteers.models import Branch, Volunteer
from volunteers.roles import branches_managed_by, can_manage_branch, is_manager


def _user_id(request: HttpRequest) -> int:
    """The logged-in user's id (views using it are behind ``login_required``)."""
    return int(request.user.pk)  # type: ignore[arg-type]


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html")


@require_GET
def chat(request: HttpRequest) -> HttpResponse:
    from chat.pages import chat_page_context

    return render(request, "frontend/chat.html", chat_page_context())


@login_required
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    volunteer = Volunteer.objects.select_related("branch").filter(user_id=_user_id(request)).first()
    from chat.pages import console_page_context

    return render(request, "frontend/console.html", console_page_context(volunteer))


@login_required
@require_GET
def manage_index(request: HttpRequest) -> HttpResponse:
    if not is_manager(request.user):
        raise PermissionDenied
    branches = branches_managed_by(request.user).order_by("name")
    return render(request, "frontend/manage_index.html", {"branches": branches})


@login_required
@require_GET
def manage_branch(request: HttpRequest, slug: str) -> HttpResponse:
    branch = get_object_or_404(Branch, slug=slug)
    if not can_manage_branch(request.user, branch):
        raise PermissionDenied
    volunteers = branch.volunteers.select_related("user").order_by("alias")
    context = {
        "branch": branch,
        "volunteers": volunteers,
        "neighbours": branch.neighbours.order_by("name"),
        "municipalities": branch.municipalities.order_by("name"),
    }
    return render(request, "frontend/manage_branch.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def manage_volunteer(request: HttpRequest, slug: str, volunteer_id: int) -> HttpResponse:
    """Edit one volunteer of a branch the user manages; another branch's volunteer is 403."""
    branch = get_object_or_404(Branch, slug=slug)
    if not can_manage_branch(request.user, branch):
        raise PermissionDenied
    volunteer = get_object_or_404(Volunteer, pk=volunteer_id, branch=branch)
    form = VolunteerForm(request.POST or None, instance=volunteer)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("manage-branch", slug=branch.slug)
    status = 400 if request.method == "POST" else 200
    context = {"branch": branch, "volunteer": volunteer, "form": form}
    return render(request, "frontend/manage_volunteer.html", context, status=status)
