"""The webhooks pages of a stream, for an admin or its manager: the list with the form
to add one, and each endpoint's page with its delivery log and actions (pause or
resume, rotate the secret, delete, send a delivery again).

A secret is shown in the answer to the POST that made it (creation, rotation), never
again: not stored in the session or a message, and the answer is not cached
(vsm.privacy). Refusals are answered by vsm.http: on the form they concern, or back
to the page with their message."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vsm.actors import request_actor
from vsm.errors import InvalidInput
from vsm.http import form_status, refusals_shown_on, refuse_back_to
from vsm.models import ValueStream
from webhooks import selectors, services
from webhooks.forms import ActiveForm, DeliveryLogForm, EndpointForm, RotateForm
from webhooks.services import EndpointWithSecret
from webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER

HEADERS = {"signature": SIGNATURE_HEADER, "event": EVENT_HEADER, "delivery": DELIVERY_HEADER}


def _stream(request: HttpRequest, stream_slug: str) -> ValueStream:
    return selectors.webhook_stream_for_actor(actor=request_actor(request), slug=stream_slug)


def _endpoint_url(stream: ValueStream, endpoint_id: int) -> str:
    return reverse("webhooks:endpoint", args=[stream.slug, endpoint_id])


@require_http_methods(["GET", "POST"])
def webhooks(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """The stream's webhooks; POST adds one and shows its secret once (201), or the form
    again with the reason and what was typed."""
    stream = _stream(request, stream_slug)
    form = EndpointForm(request.POST or None)
    created: EndpointWithSecret | None = None
    if request.method == "POST" and form.is_valid():
        with refusals_shown_on(form, request):
            created = services.webhook_endpoint_create(
                actor=request_actor(request), stream_id=stream.pk, **form.cleaned_data
            )
            form = EndpointForm()
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
        "rotate_form": RotateForm(),
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
    """POST ``keep_previous_hours``: a new secret, shown on the page this once."""
    stream = _stream(request, stream_slug)
    refuse_back_to(request, _endpoint_url(stream, endpoint_id))
    form = RotateForm(request.POST)
    if not form.is_valid():
        raise InvalidInput(
            "Say how long the old secret keeps signing.", field="keep_previous_hours"
        )
    rotated = services.webhook_endpoint_rotate_secret(
        actor=request_actor(request),
        stream_id=stream.pk,
        endpoint_id=endpoint_id,
        keep_previous_hours=form.cleaned_data["keep_previous_hours"],
    )
    return _endpoint_page(request, stream, endpoint_id, rotated=rotated)


@require_POST
def endpoint_delete(request: HttpRequest, stream_slug: str, endpoint_id: int) -> HttpResponse:
    stream = _stream(request, stream_slug)
    refuse_back_to(request, _endpoint_url(stream, endpoint_id))
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
