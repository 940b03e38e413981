"""The API's reference page (api.docs: plain HTML from the OpenAPI schema)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from api.docs import api_reference


@login_not_required
@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    """Public, as the schema is: an integrator reads it before they hold a token."""
    return render(request, "api/docs.html", {"reference": api_reference()})
