"""The API token page's form."""

from __future__ import annotations

from django import forms

from api.models import TOKEN_NAME_MAX_LENGTH, TokenScope
from vsm.once import OnceForm


class ApiTokenForm(OnceForm):
    # OnceForm's hidden "once": a form sent again (the browser's reload of the answer
    # that showed the secret) makes no second token (api.views.tokens).
    name = forms.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH,
        strip=True,
        help_text="What will use it, e.g. “Website contact form”.",
    )
    # "intake" preselected: the usual token is a web form's, and a token that can only
    # create prospects reads nobody's details if it leaks. "full" is a deliberate choice.
    scope = forms.ChoiceField(
        label="What it may do",
        choices=TokenScope.choices,
        initial=TokenScope.INTAKE,
        widget=forms.RadioSelect,
        help_text="A web form needs “intake” only; a CRM or a BI tool needs “full”.",
    )
