"""The browser's way in: one place that turns a domain error into an answer.

Views call services and let ``DomainError`` propagate; ``DomainErrorMiddleware``
answers it. A view whose page needs a particular answer to a refusal (the board
re-renders the columns involved, so a dragged card snaps back) registers a responder
with ``respond_to_refusals``; every other refusal gets the default answer:

- not found (missing, or out of reach): the site's 404 page;
- an htmx request: 200 with a toast and nothing else swapped (htmx 2 does not swap
  4xx bodies), so the page keeps what the user typed;
- a plain form post: the message, and back to the page it came from (303);
- a plain page read: a page that says what was refused, with the error's status.

A database that fails a request for a reason of the moment (the connection lost, a
time bound hit: ``vsm.transactions.busy_refusal``) is answered as the refusal
``Busy``, "try again", never a 500; the broken connection is discarded so that the
next request connects afresh.

Refused authorizations (not found, permission refused) are recorded in the audit log,
in a transaction of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django import forms
from django.contrib import messages
from django.db import DatabaseError, InterfaceError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.defaults import page_not_found
from django_htmx.middleware import HtmxDetails

from vsm.actors import request_actor
from vsm.audit import audit_refusal_record
from vsm.errors import Busy, DomainError, NotFound, PermissionRefused
from vsm.transactions import busy_refusal, discard_broken_connections

logger = logging.getLogger(__name__)


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it: typing only (django-htmx's
    documented way to let mypy see ``request.htmx``)."""

    htmx: HtmxDetails


RefusalResponder = Callable[[DomainError], HttpResponse]
_RESPONDER_ATTRIBUTE = "vsm_refusal_responder"


def respond_to_refusals(request: HttpRequest, responder: RefusalResponder) -> None:
    """Have the rest of this request's refusals (except not found) answered by
    ``responder``, e.g. the board's columns as they really are."""
    setattr(request, _RESPONDER_ATTRIBUTE, responder)


def refuse_back_to(request: HttpRequest, url: str) -> None:
    """Have the rest of this request's refusals (except not found) answered with their
    message and a redirect to ``url`` (the page the action belongs to)."""

    def respond(error: DomainError) -> HttpResponse:
        messages.error(request, error.message)
        return HttpResponseRedirect(url, status=303)

    respond_to_refusals(request, respond)


def refusal_response(request: HttpRequest, error: DomainError) -> HttpResponse:
    """The default answer to a refusal (see the module's docstring)."""
    if isinstance(error, NotFound):
        return page_not_found(request, error)
    if getattr(request, "htmx", False):
        response = render(
            request, "partials/toast.html", {"message": error.message, "level": "error"}
        )
        response["HX-Reswap"] = "none"
        return response
    if request.method == "POST":
        messages.error(request, error.message)
        return HttpResponseRedirect(_back(request), status=303)
    return render(request, "refused.html", {"error": error}, status=error.http_status)


def _back(request: HttpRequest) -> str:
    """Where a refused form post returns: the page it came from, if it is ours."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return reverse("home")


class DomainErrorMiddleware:
    """Answers every ``DomainError`` a view lets through; see the module's docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DatabaseError | InterfaceError):
            busy = _database_busy(request, exception)
            if busy is None:
                return None
            exception = busy
        if not isinstance(exception, DomainError):
            return None
        if isinstance(exception, NotFound | PermissionRefused):
            _record_refusal(request, exception)
        responder: RefusalResponder | None = getattr(request, _RESPONDER_ATTRIBUTE, None)
        if responder is not None and not isinstance(exception, NotFound):
            try:
                return responder(exception)
            except (DatabaseError, InterfaceError) as error:
                # The page's own answer reads the database: if it is still out of
                # reach, the default answer (which reads nothing) says to try again.
                busy = _database_busy(request, error)
                if busy is None:
                    raise
                exception = busy
        return refusal_response(request, exception)


def _database_busy(request: HttpRequest, error: DatabaseError | InterfaceError) -> Busy | None:
    """The "try again" refusal of a request the database failed for a reason of the
    moment (vsm.transactions.busy_refusal), or None. A lost connection is discarded
    first, so that the answer and the next request connect afresh."""
    busy = busy_refusal(error)
    if busy is not None:
        logger.warning("Database unavailable: %s %s", request.method, request.path, exc_info=error)
        discard_broken_connections()
    return busy


def _record_refusal(request: HttpRequest, error: DomainError) -> None:
    match = request.resolver_match
    action = f"http.{(match.url_name or 'page').replace('-', '_')}" if match else "http.page"
    stream_id = error.data.get("stream_id")
    try:
        audit_refusal_record(
            actor=request_actor(request),
            action=action,
            error=error,
            stream_id=stream_id if isinstance(stream_id, int) else None,
        )
    except Exception:  # the refusal must still be answered
        logger.exception("Could not record a refused %s in the audit log", action)


@contextmanager
def refusals_shown_on(form: forms.Form, request: HttpRequest) -> Iterator[None]:
    """Show a refusal on the form it is about, keeping everything the user typed.

    The error lands on its ``field`` when the form has one by that name, else on the
    form as a whole; ``form.refusal`` keeps it (its status for the page). Not found
    goes on to the middleware (a 404): there is no form to show about nothing.
    """
    try:
        yield
    except NotFound:
        raise
    except DomainError as error:
        if isinstance(error, PermissionRefused):
            _record_refusal(request, error)
        form.add_error(error.field if error.field in form.fields else None, error.message)
        form.refusal = error  # type: ignore[attr-defined]


def form_status(request: HttpRequest, form: forms.Form) -> int:
    """The status of a page that shows ``form`` again: 200 for htmx (which swaps only
    2xx answers), else the refusal's status, or 400 for input that could not be read."""
    if getattr(request, "htmx", False) or not form.errors:
        return 200
    refusal: DomainError | None = getattr(form, "refusal", None)
    return refusal.http_status if refusal is not None else 400


CSRF_FAILURE_MESSAGE = (
    "This page has expired (you logged in or out elsewhere?): nothing was saved. "
    "Reload the page and try again."
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF_FAILURE_VIEW: a form or htmx request whose token no longer matches
    the session. 403 either way; an htmx request gets the message as text (the page's
    script shows it, vsm's toasts.js), a plain post a page that says what to do."""
    if request.headers.get("HX-Request") == "true":
        return HttpResponse(CSRF_FAILURE_MESSAGE, status=403, content_type="text/plain")
    return render(request, "403_csrf.html", status=403)
