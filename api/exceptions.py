"""The API's one answer to every refusal: ``{"code", "message", "data"}`` as JSON.

``api_exception_handler`` is REST framework's EXCEPTION_HANDLER. A service's
``DomainError`` is answered with its own code, message, data (and ``field``) and
``http_status``; REST framework's own refusals take the same shape: invalid input is
``invalid_input`` with the field errors in ``data.fields``; a missing or refused
token 401, a throttled caller 429 with ``Retry-After``. A database that fails a
request for a reason of the moment is ``busy`` (503, retry), as in the browser
(vsm.http). Refused authorizations (not found, permission refused) go to the audit
log, as the browser's do.

What is refused before any view of the API runs (a NUL in the URL, a body over
DATA_UPLOAD_MAX_MEMORY_SIZE, more query parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS,
a bad Host) reaches Django's handler400, and a bug its handler500: ``bad_request`` and
``server_error`` (vsm.urls' handlers) answer those in the same shape for a path under
the API, and with the site's pages anywhere else.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
)
from django.db import DatabaseError, InterfaceError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from api.models import ApiToken
from vsm.actors import TokenActor
from vsm.audit import audit_refusal_record
from vsm.errors import DomainError, NotFound, PermissionRefused
from vsm.transactions import busy_refusal, discard_broken_connections
from vsm.views import server_error as site_server_error

logger = logging.getLogger(__name__)

INVALID_INPUT = "invalid_input"
# REST framework's refusals whose own code is not the one we answer.
_CODES: dict[type[exceptions.APIException], str] = {exceptions.ParseError: INVALID_INPUT}
_MESSAGES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "Send a value stream's API token: Authorization: Bearer vsm_…",
}


def error_body(code: str, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "data": data or {}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST framework's EXCEPTION_HANDLER (see the module's docstring). None (a 500)
    only for what no caller's input can cause: a bug."""
    request = context.get("request")
    if isinstance(exc, DatabaseError | InterfaceError):
        busy = busy_refusal(exc)
        if busy is None:
            return None
        logger.warning("Database unavailable during an API request", exc_info=exc)
        discard_broken_connections()
        exc = busy
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = PermissionRefused()
    if isinstance(exc, DomainError):
        if isinstance(exc, NotFound | PermissionRefused):
            _record_refusal(request, context.get("view"), exc)
        set_rollback()
        return Response(exc.as_dict(), status=exc.http_status)
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    data: dict[str, Any] = {}
    wait = getattr(exc, "wait", None)  # a Throttled's seconds (not in the type stubs)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = f"{int(wait)}"
        data["wait_seconds"] = int(wait)
        message = f"Too many requests with this token; try again in {int(wait)} s."
    elif isinstance(exc, exceptions.ValidationError):
        data["fields"] = _field_errors(exc.detail)
        message = _invalid_message(data["fields"])
    else:
        message = _MESSAGES.get(type(exc)) or _text(exc.detail)
    code = _CODES.get(type(exc)) or (
        INVALID_INPUT if isinstance(exc, exceptions.ValidationError) else exc.default_code
    )
    set_rollback()
    return Response(error_body(str(code), message, data), status=exc.status_code, headers=headers)


def _text(detail: Any) -> str:
    if isinstance(detail, list):
        return " ".join(_text(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(_text(item) for item in detail.values())
    return str(detail)


def _field_errors(detail: Any) -> dict[str, Any]:
    """A serializer's errors, as plain JSON: {field: [messages]} (nested for a nested
    input), the errors of the input as a whole under "non_field_errors"."""
    if isinstance(detail, dict):
        return {str(name): _plain(value) for name, value in detail.items()}
    return {"non_field_errors": _plain(detail)}


def _plain(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(name): _plain(value) for name, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(item) for item in detail]
    return str(detail)


def _invalid_message(fields: dict[str, Any]) -> str:
    named = [name for name in fields if name != "non_field_errors"]
    if not named:
        return _text(fields.get("non_field_errors", "")) or "The request could not be read."
    return "Some input was not valid: " + ", ".join(sorted(named)) + "."


def _record_refusal(request: Any, view: Any, error: DomainError) -> None:
    """A refused authorization, in the audit log (a transaction of its own)."""
    token = getattr(request, "auth", None)
    if not isinstance(token, ApiToken):
        return
    name = getattr(getattr(request, "resolver_match", None), "url_name", None) or "request"
    stream_id = error.data.get("stream_id")
    try:
        audit_refusal_record(
            actor=TokenActor(token_id=token.pk, stream_id=token.value_stream_id),
            action=f"api.{name.replace('-', '_')}",
            error=error,
            stream_id=stream_id if isinstance(stream_id, int) else None,
        )
    except Exception:  # the refusal must still be answered
        logger.exception("Could not record a refused API request in the audit log")


def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other URL under the API: not found, in the API's shape (not the site's page)."""
    body = error_body(NotFound.code, "No such API endpoint.")
    return JsonResponse(body, status=404)


@functools.cache
def _api_root() -> str:
    return reverse("api:not-found", kwargs={"path": ""})


def is_api_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for a path under the API (/api/, wherever it is mounted)."""
    return request.path.startswith(_api_root())


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: a request refused before a view could read it (a BadRequest or a
    SuspiciousOperation raised by a middleware or by reading the request). Under the
    API, 400 ``invalid_input`` in the API's shape, saying what was refused; elsewhere
    the site's 400 page. Reads nothing from the database."""
    if not is_api_request(request):
        return defaults.bad_request(request, exception)
    data: dict[str, Any] = {}
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = f"The request body is over {limit} bytes; nothing was read."
        data["max_bytes"] = limit
    elif isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        message = f"More than {limit} parameters; nothing was read."
        data["max_parameters"] = limit
    elif type(exception) is BadRequest and str(exception):
        message = str(exception)  # ours (vsm.middleware), not the client's text
    else:
        message = "The request could not be read."
    return JsonResponse(error_body(INVALID_INPUT, message, data), status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an error no view answered. Under the API, in the API's shape: 503
    ``busy`` with Retry-After for a database that failed for a reason of the moment
    (its broken connection discarded), else 500 ``server_error``; elsewhere the site's
    pages (vsm.views.server_error). Reads nothing from the database."""
    if not is_api_request(request):
        return site_server_error(request)
    error = sys.exc_info()[1]
    busy = busy_refusal(error) if error is not None else None
    if busy is None:
        body = error_body("server_error", "Something went wrong on the server.")
        return JsonResponse(body, status=500)
    discard_broken_connections()
    response = JsonResponse(busy.as_dict(), status=busy.http_status)
    response["Retry-After"] = "5"
    return response
