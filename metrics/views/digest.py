"""The weekly digest e-mail: a member asks for it, or stops it, from the dashboard."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from boards import selectors as board_selectors
from metrics import services
from metrics.views import HtmxHttpRequest
from vsm.actors import request_actor
from vsm.http import refuse_back_to

CHOICES = {"1": True, "0": False}


@require_POST
def digest_subscription(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    """POST ``subscribe`` = 1 (e-mail me the weekly digest) or 0 (stop it). Answers htmx
    with the re-rendered toggle, a plain form post with the dashboard and a message;
    404 for a stream the user may not see."""
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    subscribe = CHOICES.get(request.POST.get("subscribe", ""))
    if subscribe is None:
        return HttpResponseBadRequest("subscribe must be 1 or 0.")
    if not request.htmx:
        refuse_back_to(request, reverse("metrics:dashboard", args=[stream.slug]))
    receives = services.digest_subscription_set(
        actor=request_actor(request), stream_id=stream.pk, subscribed=subscribe
    )
    if request.htmx:
        return render(request, "metrics/partials/digest_toggle.html", {"stream": stream})
    messages.success(
        request,
        "You will receive the weekly digest every Monday."
        if receives
        else "You will no longer receive the weekly digest.",
    )
    return redirect("metrics:dashboard", stream_slug=stream.slug)
