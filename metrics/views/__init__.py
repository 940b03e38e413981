"""The manager's pages: the dashboard, its CSV downloads, forecasts, the weekly review."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it: typing only (django-htmx's
    documented way to let mypy see ``request.htmx``)."""

    htmx: HtmxDetails
