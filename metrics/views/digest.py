"""The weekly digest e-mail: a member asks for it, or stops it, from the dashboard."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from boards import selectors as board_selectors
from boards.errors import PermissionRefused
from metrics import services

CHOICES = {"1": True, "0": False}


@require_POST
def digest_subscription(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """POST ``subscribe`` = 1 (e-mail me the weekly digest) or 0 (stop it). Answers htmx
    with the re-rendered toggle, a plain form post with the dashboard and a message;
    404 for a stream the user may not see."""
    stream = board_selectors.stream_for_user(user=request.user, slug=stream_slug)
    subscribe = CHOICES.get(request.POST.get("subscribe", ""))
    if subscribe is None:
        return HttpResponseBadRequest("subscribe must be 1 or 0.")
    try:
        receives = services.digest_subscription_set(
            user=request.user, stream_id=stream.pk, subscribed=subscribe
        )
    except PermissionRefused as refusal:
        messages.error(request, str(refusal))
        receives = None
    if request.htmx:
        return render(request, "metrics/partials/digest_toggle.html", {"stream": stream})
    if receives is not None:
        messages.success(
            request,
            "You will receive the weekly digest every Monday."
            if receives
            else "You will no longer receive the weekly digest.",
        )
    return redirect("metrics:dashboard", stream_slug=stream.slug)
