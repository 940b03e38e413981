"""The archive: a stream's won and lost cards, to find a deal again and reopen it."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from boards import selectors
from boards.forms import ArchiveFilterForm
from vsm.actors import request_actor
from vsm.http import HtmxHttpRequest


@require_GET
def archive(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    form = ArchiveFilterForm(request.GET)
    query = form.query(stream)
    filters = request.GET.copy()
    for cursor in ("older", "newer"):
        filters.pop(cursor, None)
    context = {
        "stream": stream,
        "form": form,
        "query": query,
        "page": selectors.archive_page(query),
        "filter_query": filters.urlencode(),
        **selectors.archive_filter_choices(stream=stream),
    }
    return render(request, "boards/archive.html", context)
