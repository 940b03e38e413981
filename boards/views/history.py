"""A card's history on its page: comments (the timeline itself is read by card_detail)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from boards import selectors, services
from boards.forms import CommentForm
from boards.views.cards import _card_form, _card_page, _render_detail
from vsm.actors import request_actor
from vsm.http import HtmxHttpRequest, refusals_shown_on


@require_POST
def card_comment(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """Comment on a card. For htmx, the history section again: the new comment on top,
    or the refusal on the field with the text kept. A plain post goes back to the card's
    history, or shows the card page with the refusal."""
    stream, card = _card_page(request, stream_slug, card_id)
    form = CommentForm(request.POST)
    if form.is_valid():
        with refusals_shown_on(form, request):
            services.card_comment_add(
                card_id=card.pk, text=form.cleaned_data["text"], actor=request_actor(request)
            )
        if not form.errors:
            if not request.htmx:
                url = reverse("boards:card-detail", args=[stream.slug, card.pk])
                return redirect(f"{url}#history")
            form = CommentForm()
    if not request.htmx:
        return _render_detail(request, stream, card, _card_form(stream, card), comment_form=form)
    context = {
        "stream": stream,
        "card": card,
        "comment_form": form,
        "timeline": selectors.card_timeline(card=card),
    }
    return render(request, "boards/card_detail.html#history", context)
