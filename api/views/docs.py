"""The API's reference page (api.docs: plain HTML from the OpenAPI schema)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from api.docs import api_reference
from api.exceptions import error_body

_METHODS = ("GET", "HEAD")


@csrf_exempt  # refuses every unsafe method itself, in the API's shape
@login_not_required
def api_docs(request: HttpRequest) -> HttpResponse:
    """Public, as the schema is: an integrator reads it before they hold a token. Any
    other method than GET (or HEAD): 405 ``method_not_allowed`` in the API's shape."""
    if request.method not in _METHODS:
        body = error_body("method_not_allowed", f"Method “{request.method}” not allowed.")
        return JsonResponse(body, status=405, headers={"Allow": ", ".join(_METHODS)})
    return render(request, "api/docs.html", {"reference": api_reference()})
