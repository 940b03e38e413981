from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from boards import selectors, services
from boards.forms import ColumnPageForm, WipLimitForm, board_filters, shown_cards
from boards.views.common import (
    back_to_board,
    board_context,
    columns_response,
    refuse_with_columns,
)
from vsm.actors import request_actor
from vsm.caching import cache_get_quietly, cache_set_quietly
from vsm.errors import InvalidInput
from vsm.http import HtmxHttpRequest
from vsm.models import ValueStream


@require_GET
def stream_list(request: HtmxHttpRequest) -> HttpResponse:
    streams = selectors.value_streams_for_actor(actor=request_actor(request))
    return render(request, "boards/stream_list.html", {"streams": streams})


# Never stored (vsm.privacy.NoStoreMiddleware, for every answer): Back and Forward
# fetch the board again rather than show it as the browser kept it.
@require_GET
def board(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    context = board_context(request, stream)
    stream_board = selectors.board_get(stream=stream, filters=context["filters"])
    context.update(
        board=stream_board,
        filtered_out=_filtered_out(stream_board),
        **selectors.board_filter_choices(stream=stream),
    )
    template = "boards/board.html#board" if request.htmx else "boards/board.html"
    return render(request, template, context)


BOARD_FILTERS_HEADER = "X-Board-Filters"


# More changed cards than this since a client's version: it gets the whole board. A
# delta is rendered once for every viewer, the whole board for each: with 8 movers a
# viewer 2-3 s behind is 80-120 cards behind (bench/board_bench.py, read load).
DELTA_MAX_CARDS = 250


# How long a rendered delta is kept for the other viewers asking for the same one.
DELTA_KEPT_SECONDS = 30


@require_GET
def board_poll(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    """Live updates, against the client's ``version``: 204 while nothing changed (with
    the version to hold next in ``X-Board-Version``, when it moved on); what
    changed (the changed cards, every head; ``X-Board-Delta: 1``) when the client shows
    the unfiltered board and at most DELTA_MAX_CARDS cards changed; else the whole
    board, showing as many cards of each column as the client does (``shown``), with
    the filters of the ``X-Board-Filters`` header (a query string). The new version
    is in ``X-Board-Version`` (a delta) or the board's ``data-version``."""
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    since = selectors.BoardVersion.parse(request.GET.get("version", ""))
    # board.js sends the filters in a header, not the URL: a search for a person's name
    # would otherwise be repeated into access logs every two seconds.
    in_header = request.headers.get(BOARD_FILTERS_HEADER)
    context = board_context(
        request, stream, query=QueryDict(in_header) if in_header is not None else None
    )
    if since is not None and not context["filters"].active:
        answer = _delta_answer(stream, since, can_manage=context["can_manage"])
        if answer is not None:
            return answer
    elif since is not None and selectors.board_unchanged(stream=stream, since=since):
        return HttpResponse(status=204)
    stream_board = selectors.board_get(
        stream=stream, filters=context["filters"], shown=shown_cards(request.GET)
    )
    context.update(board=stream_board, filtered_out=_filtered_out(stream_board))
    return render(request, "boards/board.html#board", context)


def _delta_answer(
    stream: ValueStream, since: selectors.BoardVersion, *, can_manage: bool
) -> HttpResponse | None:
    """What changed since ``since`` up to the version published to every viewer (204
    when the client holds it), or None when the client needs the whole board.

    Viewers told the same version ask for the same deltas: each is rendered once, by
    whichever viewer asks first, and kept for the others (it holds no one's CSRF token
    and differs only by whether the viewer may change WIP limits).
    """
    now = selectors.board_version_published(
        stream=stream, max_age_seconds=settings.VSM_BOARD_PUBLISH_SECONDS
    )
    if now == since:
        return HttpResponse(status=204)
    if now.columns != since.columns:
        return None
    pair = hashlib.blake2b(f"{since}>{now}".encode(), digest_size=16).hexdigest()
    key = f"board-delta:{stream.pk}:{pair}:{int(can_manage)}"
    body = cache_get_quietly(key)
    if not isinstance(body, bytes):
        changed = selectors.cards_changed(stream=stream, since=since, limit=DELTA_MAX_CARDS)
        if changed is None:
            return None
        body = b""
        if changed:
            delta = selectors.board_delta(stream=stream, card_ids=changed, version=now)
            context = {"stream": stream, "delta": delta, "can_manage": can_manage, "shared": True}
            body = render_to_string("boards/partials/board_delta.html", context).encode()
        cache_set_quietly(key, body, timeout=DELTA_KEPT_SECONDS)
    # Nothing changed for this board, though the version moved on (on PostgreSQL any
    # write anywhere does): 204, and the client takes the version it is told.
    response = HttpResponse(body) if body else HttpResponse(status=204)
    if body:
        response["X-Board-Delta"] = "1"
    response["X-Board-Version"] = str(now)
    return response


def _filtered_out(board: selectors.Board) -> bool:
    """Whether the filters hide every open card: the board says so, rather than showing
    empty columns that look like an empty stream."""
    return board.filters.active and not any(view.shown_count for view in board.column_views)


@require_GET
def column_more(request: HtmxHttpRequest, stream_slug: str, column_id: int) -> HttpResponse:
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    filters = board_filters(request.GET, viewer_id=request.user.pk)
    column, cards, has_more = selectors.column_cards_page(
        stream=stream,
        column_id=column_id,
        filters=filters,
        after=ColumnPageForm(request.GET).cursor(),
    )
    context = {
        "stream": stream,
        "column": column,
        "cards": cards,
        "has_more": has_more,
        "filter_query": filters.querystring(),
    }
    return render(request, "boards/partials/more_cards.html", context)


@require_POST
def column_wip_limit(request: HtmxHttpRequest, stream_slug: str, column_id: int) -> HttpResponse:
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    column = selectors.column_in_stream(stream=stream, column_id=column_id)
    refuse_with_columns(request, stream, [column.pk])
    form = WipLimitForm(request.POST)
    if not form.is_valid():
        raise InvalidInput(form.refusal(), field="wip_limit")
    services.column_set_wip_limit(
        column_id=column.pk, wip_limit=form.cleaned_data["wip_limit"], actor=request_actor(request)
    )
    message = f"WIP limit of {column.name} saved."
    if not request.htmx:
        return back_to_board(request, stream, message)
    return columns_response(request, stream, [column.pk], message=message)
