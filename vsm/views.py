import sys

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from vsm.transactions import busy_refusal, discard_broken_connections


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and compose healthchecks: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an error no view answered, including one raised before any view (the
    session read by a middleware while the database is unreachable).

    A database that failed for a reason of the moment (``vsm.transactions.
    busy_refusal``) is "try again", 503 with Retry-After, and its broken connection is
    discarded; anything else is Django's 500 page. Neither touches the database: the
    templates render without the request's context (no user, no session).
    """
    error = sys.exc_info()[1]
    busy = busy_refusal(error) if error is not None else None
    if busy is None:
        return defaults.server_error(request)
    discard_broken_connections()
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(busy.message, status=503, content_type="text/plain")
    else:
        page = loader.get_template("503.html").render({"message": busy.message})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = "5"
    return response
