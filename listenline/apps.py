from django.apps import AppConfig


class ListenlineConfig(AppConfig):
    name = "listenline"
    verbose_name = "Listenline"

    def ready(self) -> None:
        from django.contrib import admin

        from volunteers.roles import is_national_coordinator

        # The admin is the national coordinator's tool, not every staff member's.
        admin.site.has_permission = lambda request: bool(  # type: ignore[method-assign]
            request.user.is_active
            and request.user.is_staff
            and is_national_coordinator(request.user)
        )
        admin.site.site_header = "Listenline"
