"""A stream's API tokens page: its manager (or an admin) makes tokens, sees each new
secret once, and revokes them (after a question on a page of its own). Others are
refused (403), or told the stream is not found (404) when they may not see it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from api import services
from api.forms import ApiTokenForm
from api.selectors import api_token_of_stream, api_tokens_of_stream
from vsm.access import stream_access
from vsm.actors import request_actor
from vsm.http import form_status, refusals_shown_on, refuse_back_to
from vsm.once import once_forget, once_sent_before

SENT_AGAIN = (
    "That form was sent before: its token was made then, and its secret shown then "
    "only. If it was not copied, revoke that token and make a new one."
)


@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """The tokens; POST ``name`` and ``scope`` makes one and shows its secret on the
    answer, once (the page is not stored by any cache: vsm.privacy)."""
    actor = request_actor(request)
    stream = stream_access(actor=actor, slug=stream_slug, steer=True)
    form = ApiTokenForm(request.POST) if request.method == "POST" else ApiTokenForm.new()
    issued = None
    if request.method == "POST" and form.is_valid():
        once = form.cleaned_data["once"]
        if once_sent_before(purpose="api-token-create", once=once):
            messages.warning(request, SENT_AGAIN)
            return redirect("api_pages:tokens", stream_slug=stream.slug)
        with refusals_shown_on(form, request):
            issued = services.api_token_create(
                stream_id=stream.pk,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                actor=actor,
            )
        if issued is None:  # refused: the same form may be sent again, corrected
            once_forget(purpose="api-token-create", once=once)
    context = {
        "stream": stream,
        "form": ApiTokenForm.new() if issued is not None else form,
        "issued": issued,
        "tokens": api_tokens_of_stream(stream=stream),
    }
    return render(request, "api/tokens.html", context, status=form_status(request, form))


@require_http_methods(["GET", "POST"])
def api_token_revoke(request: HttpRequest, stream_slug: str, token_id: int) -> HttpResponse:
    """GET asks first (what revoking does, and that it cannot be undone); POST revokes.
    A token revoked already is not asked about again: back to the list."""
    actor = request_actor(request)
    stream = stream_access(actor=actor, slug=stream_slug, steer=True)
    if request.method == "GET":
        token = api_token_of_stream(stream=stream, token_id=token_id)
        if token.revoked_at is not None:
            messages.info(request, f"“{token.name}” is already revoked.")
            return redirect("api_pages:tokens", stream_slug=stream.slug)
        return render(request, "api/token_revoke.html", {"stream": stream, "token": token})
    refuse_back_to(request, reverse("api_pages:tokens", args=[stream.slug]))
    token = services.api_token_revoke(token_id=token_id, stream_id=stream.pk, actor=actor)
    messages.success(request, f"“{token.name}” is revoked: requests with it are refused.")
    return redirect("api_pages:tokens", stream_slug=stream.slug)
