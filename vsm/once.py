"""A form that acts once: sent again (the browser's reload of the answer, a double
click), it makes nothing new.

Each form shown carries a fresh random ``once`` (a hidden field). The first time a
form with that ``once`` is acted on, the cache remembers it for ONCE_SECONDS
(``cache.add`` is atomic: of two sends at the same moment, one wins); a later send
finds it and the view answers "sent before" instead of acting. A refused action is
forgotten, so the same form can be sent again, corrected. A cache that is down
remembers nothing, and a second send acts again (as with no guard): it never blocks
a first send.

Used by the webhooks pages (add, rotate) and the API tokens page (make a token).
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any, Self

from django import forms
from django.core.cache import cache
from django.http import QueryDict

# Longer than anyone keeps a page open.
ONCE_SECONDS = 24 * 60 * 60
STALE_MESSAGE = "This form is out of date: nothing was saved. Check it and send it again."


def once_new() -> str:
    return secrets.token_urlsafe(24)


def _key(purpose: str, once: str) -> str:
    return f"vsm:form-once:{purpose}:{once}"


def once_sent_before(*, purpose: str, once: str) -> bool:
    """Whether a form of ``purpose`` (e.g. "webhook-create") with this ``once`` was
    acted on already; marks it acted on when it was not."""
    try:
        return not cache.add(_key(purpose, once), 1, timeout=ONCE_SECONDS)
    except Exception:  # the cache is down: act (a repeat is possible, a loss is not)
        return False


def once_forget(*, purpose: str, once: str) -> None:
    """Let the form with this ``once`` be acted on again (its action was refused)."""
    with contextlib.suppress(Exception):
        cache.delete(_key(purpose, once))


class OnceForm(forms.Form):
    """A form with a hidden ``once``. Make the form to show with ``new()``. A form sent
    with no ``once`` or a malformed one (a page from before the field existed) is
    invalid with STALE_MESSAGE, and shown again with a fresh ``once``."""

    once = forms.CharField(
        widget=forms.HiddenInput,
        min_length=16,
        max_length=64,
        error_messages={
            "required": STALE_MESSAGE,
            "min_length": STALE_MESSAGE,
            "max_length": STALE_MESSAGE,
        },
    )

    @classmethod
    def new(cls, **kwargs: Any) -> Self:
        """An unbound form carrying a fresh ``once``."""
        return cls(initial={"once": once_new()}, **kwargs)

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound and "once" in self.errors:
            data = self.data.copy() if isinstance(self.data, QueryDict) else dict(self.data)
            data["once"] = once_new()
            self.data = data
