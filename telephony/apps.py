from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TelephonyConfig(AppConfig):
    name = "telephony"
    verbose_name = _("Telephony")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from telephony import callout, checks  # noqa: F401  (registers the system check)

        callout.connect()
