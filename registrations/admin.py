from django.contrib import admin

from registrations.models import Registration


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ("registered_hour", "channel", "branch", "age_band", "ending")
    list_filter = ("channel", "branch", "ending")
