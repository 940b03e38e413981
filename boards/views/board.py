from __future__ import annotations

from django.http import HttpResponse, QueryDict
from django.shortcuts import render
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
from vsm.errors import InvalidInput
from vsm.http import HtmxHttpRequest


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


# More changed cards than this since a client's version: it gets the whole board.
DELTA_MAX_CARDS = 100


@require_GET
def board_poll(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    """Live updates, against the client's ``version``: 204 while nothing changed; what
    changed (the changed cards, every head; ``X-Board-Delta: 1``) when the client shows
    the unfiltered board and at most DELTA_MAX_CARDS cards changed; else the whole
    board, showing as many cards of each column as the client does (``shown``), with
    the filters of the ``X-Board-Filters`` header (a query string). The new version
    is in ``X-Board-Version`` (a delta) or the board's ``data-version``."""
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    since = selectors.BoardVersion.parse(request.GET.get("version", ""))
    if since is not None and selectors.board_unchanged(stream=stream, since=since):
        return HttpResponse(status=204)
    # board.js sends the filters in a header, not the URL: a search for a person's name
    # would otherwise be repeated into access logs every two seconds.
    in_header = request.headers.get(BOARD_FILTERS_HEADER)
    context = board_context(
        request, stream, query=QueryDict(in_header) if in_header is not None else None
    )
    if since is not None and not context["filters"].active:
        now = selectors.board_version(stream=stream)
        changed = selectors.cards_changed(stream=stream, since=since, limit=DELTA_MAX_CARDS)
        if now.columns == since.columns and changed is not None:
            context["delta"] = selectors.board_delta(stream=stream, card_ids=changed, version=now)
            response = render(request, "boards/partials/board_delta.html", context)
            response["X-Board-Delta"] = "1"
            response["X-Board-Version"] = str(now)
            return response
    stream_board = selectors.board_get(
        stream=stream, filters=context["filters"], shown=shown_cards(request.GET)
    )
    context.update(board=stream_board, filtered_out=_filtered_out(stream_board))
    return render(request, "boards/board.html#board", context)


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
