"""The API token page's form."""

from __future__ import annotations

import secrets

from django import forms

from api.models import TOKEN_NAME_MAX_LENGTH


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH,
        strip=True,
        help_text="What will use it, e.g. “Website contact form”.",
    )
    # One per form shown: a form sent again (the browser's reload of the answer that
    # showed the secret) makes no second token (api.views.tokens).
    once = forms.CharField(widget=forms.HiddenInput, min_length=16, max_length=64)

    @classmethod
    def new(cls) -> ApiTokenForm:
        return cls(initial={"once": secrets.token_urlsafe(24)})
