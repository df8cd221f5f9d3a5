"""Forms of the manager pages. A branch manager never chooses a branch: it is theirs."""

from __future__ import annotations

from django import forms

from volunteers.models import Volunteer


class VolunteerForm(forms.ModelForm):
    class Meta:
        model = Volunteer
        fields = [
            "alias",
            "takes_phone",
            "takes_chat",
            "takes_mail",
            "chat_limit",
            "phone_number",
            "is_active",
        ]
