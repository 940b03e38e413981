"""The bench's own view: the floor of a request (``board_bench.py``'s floor phase)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

EMPTY_POST_PATH = "/bench/empty/"


@require_POST
def empty_post(request: HttpRequest) -> HttpResponse:
    """Nothing: what any logged-in htmx POST costs before its view does any work.

    Served through the whole middleware stack of production (session, CSRF, login
    required, htmx, the domain error middleware), with no query of its own: the
    session's and the user's reads are the middleware's.
    """
    return HttpResponse(b"", content_type="text/html; charset=utf-8")
