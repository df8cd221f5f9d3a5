from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from frontend import views

urlpatterns = [
    path("", views.home, name="home"),
    path("chat/", views.chat, name="chat"),
    path("console/", views.console, name="console"),
    path("manage/", views.manage_index, name="manage"),
    path("manage/<slug:slug>/", views.manage_branch, name="manage-branch"),
    path(
        "manage/<slug:slug>/volunteers/<int:volunteer_id>/",
        views.manage_volunteer,
        name="manage-volunteer",
    ),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("twilio/", include("telephony.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
