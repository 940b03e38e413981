"""The API token page's form."""

from __future__ import annotations

from django import forms

from api.models import TOKEN_NAME_MAX_LENGTH
from vsm.once import OnceForm


class ApiTokenForm(OnceForm):
    # OnceForm's hidden "once": a form sent again (the browser's reload of the answer
    # that showed the secret) makes no second token (api.views.tokens).
    name = forms.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH,
        strip=True,
        help_text="What will use it, e.g. “Website contact form”.",
    )
