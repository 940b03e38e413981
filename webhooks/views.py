"""The webhooks pages of a stream, for an admin or its manager: the list with the form
to add one, and each endpoint's page with its delivery log and actions (pause or
resume, rotate the secret, delete, send a delivery again).

A secret is shown in the answer to the POST that made it (creation, rotation), never
again: not stored in the session or a message, and the answer is not cached
(vsm.privacy). Refusals are answered by vsm.http: on the form they concern, or back
to the page with their message."""

from __future__ import annotations

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vsm.actors import request_actor
from vsm.errors import InvalidInput
from vsm.http import form_status, refusals_shown_on, refuse_back_to
from vsm.models import ValueStream
from vsm.once import once_forget, once_sent_before
from webhooks import selectors, services
from webhooks.forms import ActiveForm, DeleteForm, DeliveryLogForm, EndpointForm, RotateForm
from webhooks.services import EndpointWithSecret
from webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER

HEADERS = {"signature": SIGNATURE_HEADER, "event": EVENT_HEADER, "delivery": DELIVERY_HEADER}
ADDED_BEFORE = (
    "That form was sent before: its webhook was added then, and its secret shown then "
    "only. If it was not copied, rotate the secret on the webhook's page."
)
ROTATED_BEFORE = (
    "That form was sent before: the secret was rotated then, and the new one shown then "
    "only; it was not rotated again. If it was not copied, rotate it once more."
)


def _stream(request: HttpRequest, stream_slug: str) -> ValueStream:
    return selectors.webhook_stream_for_actor(actor=request_actor(request), slug=stream_slug)


def _endpoint_url(stream: ValueStream, endpoint_id: int) -> str:
    return reverse("webhooks:endpoint", args=[stream.slug, endpoint_id])


def _first_error(form: Form) -> InvalidInput:
    """The refusal of a form sent from a button (answered back on its page): its
    first error, in words."""
    field, errors = next(iter(form.errors.items()))
    return InvalidInput(str(errors[0]), field=field)


@require_http_methods(["GET", "POST"])
def webhooks(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """The stream's webhooks; POST adds one and shows its secret once (201), or the form
    again with the reason and what was typed. The same form sent again adds nothing
    (vsm.once): back to the list, saying so."""
    stream = _stream(request, stream_slug)
    form = EndpointForm(request.POST) if request.method == "POST" else EndpointForm.new()
    created: EndpointWithSecret | None = None
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        once = fields.pop("once")
        if once_sent_before(purpose="webhook-create", once=once):
            messages.warning(request, ADDED_BEFORE)
            return HttpResponseRedirect(reverse("webhooks:list", args=[stream.slug]), status=303)
        try:
            with refusals_shown_on(form, request):
                created = services.webhook_endpoint_create(
                    actor=request_actor(request), stream_id=stream.pk, **fields
                )
                form = EndpointForm.new()
        finally:
            if created is None:  # refused or failed: the same form may be sent again
                once_forget(purpose="webhook-create", once=once)
    context = {
        "stream": stream,
        "rows": selectors.webhook_endpoints_of_stream(stream=stream),
        "form": form,
        "created": created,
        "headers": HEADERS,
    }
    status = 201 if created else form_status(request, form)
    return render(request, "webhooks/webhooks.html", context, status=status)


def _endpoint_page(
    request: HttpRequest,
    stream: ValueStream,
    endpoint_id: int,
    *,
    rotated: EndpointWithSecret | None = None,
) -> HttpResponse:
    log_form = DeliveryLogForm(request.GET)
    status = log_form.cleaned_data["status"] if log_form.is_valid() else ""
    page = selectors.webhook_endpoint_page(stream=stream, endpoint_id=endpoint_id, status=status)
    context = {
        "stream": stream,
        "page": page,
        "endpoint": page.row.endpoint,
        "log_form": log_form,
        "rotate_form": RotateForm.new(),
        "delete_form": DeleteForm(),
        "rotated": rotated,
        "headers": HEADERS,
    }
    return render(request, "webhooks/endpoint.html", context)


@require_GET
def endpoint(request: HttpRequest, stream_slug: str, endpoint_id: int) -> HttpResponse:
    """One endpoint: its state and its delivery log (``?status=`` filters it)."""
    return _endpoint_page(request, _stream(request, stream_slug), endpoint_id)


@require_POST
def endpoint_active(request: HttpRequest, stream_slug: str, endpoint_id: int) -> HttpResponse:
    """POST ``active`` = 1 (resume) or 0 (pause)."""
    stream = _stream(request, stream_slug)
    back = _endpoint_url(stream, endpoint_id)
    refuse_back_to(request, back)
    form = ActiveForm(request.POST)
    if not form.is_valid():
        raise InvalidInput("Say whether to pause or resume the webhook.", field="active")
    endpoint = services.webhook_endpoint_set_active(
        actor=request_actor(request),
        stream_id=stream.pk,
        endpoint_id=endpoint_id,
        active=bool(form.cleaned_data["active"]),
    )
    messages.success(
        request,
        "Resumed: the moves made while it was paused are sent now, in order."
        if endpoint.is_active
        else "Paused: nothing is sent until you resume it.",
    )
    return HttpResponseRedirect(back, status=303)


@require_POST
def endpoint_rotate(request: HttpRequest, stream_slug: str, endpoint_id: int) -> HttpResponse:
    """POST ``keep_previous_hours``: a new secret, shown on the page this once. The same
    form sent again (the answer reloaded) rotates nothing: back to the page, saying so."""
    stream = _stream(request, stream_slug)
    back = _endpoint_url(stream, endpoint_id)
    refuse_back_to(request, back)
    form = RotateForm(request.POST)
    if not form.is_valid():
        raise _first_error(form)
    once = form.cleaned_data["once"]
    if once_sent_before(purpose="webhook-rotate", once=once):
        messages.warning(request, ROTATED_BEFORE)
        return HttpResponseRedirect(back, status=303)
    try:
        rotated = services.webhook_endpoint_rotate_secret(
            actor=request_actor(request),
            stream_id=stream.pk,
            endpoint_id=endpoint_id,
            keep_previous_hours=form.cleaned_data["keep_previous_hours"],
        )
    except BaseException:  # refused or failed: the same form may be sent again
        once_forget(purpose="webhook-rotate", once=once)
        raise
    return _endpoint_page(request, stream, endpoint_id, rotated=rotated)


@require_POST
def endpoint_delete(request: HttpRequest, stream_slug: str, endpoint_id: int) -> HttpResponse:
    """POST ``confirm``: deletes the webhook and its log; without it, nothing."""
    stream = _stream(request, stream_slug)
    refuse_back_to(request, _endpoint_url(stream, endpoint_id))
    form = DeleteForm(request.POST)
    if not form.is_valid():
        raise _first_error(form)
    services.webhook_endpoint_delete(
        actor=request_actor(request), stream_id=stream.pk, endpoint_id=endpoint_id
    )
    messages.success(request, "Deleted the webhook and its delivery log.")
    return HttpResponseRedirect(reverse("webhooks:list", args=[stream.slug]), status=303)


@require_POST
def delivery_retry(
    request: HttpRequest, stream_slug: str, endpoint_id: int, delivery_id: int
) -> HttpResponse:
    """Send a failed or dead delivery again, now."""
    stream = _stream(request, stream_slug)
    back = _endpoint_url(stream, endpoint_id)
    refuse_back_to(request, back)
    services.webhook_delivery_retry(
        actor=request_actor(request),
        stream_id=stream.pk,
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
    )
    messages.success(request, "The delivery is sent again, before the webhook's later ones.")
    return HttpResponseRedirect(back, status=303)
