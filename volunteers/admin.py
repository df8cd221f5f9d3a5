from django.contrib import admin

from volunteers.models import Branch, Manager, Municipality, Volunteer


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "population", "local_phone_number", "strict_locality"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["neighbours"]


@admin.register(Municipality)
class MunicipalityAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "branch", "population"]
    list_filter = ["branch"]
    search_fields = ["name", "code"]
    exclude = ["neighbours"]


@admin.register(Volunteer)
class VolunteerAdmin(admin.ModelAdmin):
    list_display = [
        "alias",
        "branch",
        "takes_phone",
        "takes_chat",
        "takes_mail",
        "chat_limit",
        "is_active",
    ]
    list_filter = ["branch", "is_active"]
    search_fields = ["alias", "user__username"]
    raw_id_fields = ["user"]


@admin.register(Manager)
class ManagerAdmin(admin.ModelAdmin):
    list_display = ["user", "branch"]
    raw_id_fields = ["user"]
