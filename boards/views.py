from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from boards import selectors
from boards.forms import BoardFilterForm


@require_GET
def stream_list(request: HttpRequest) -> HttpResponse:
    streams = selectors.value_streams_for_user(user=request.user)
    return render(request, "boards/stream_list.html", {"streams": streams})


@require_GET
def board(request: HttpRequest, stream_slug: str) -> HttpResponse:
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    filter_form = BoardFilterForm(request.GET)
    board = selectors.board_get(stream=stream, filters=filter_form.filters())
    template = "boards/board.html#board" if request.htmx else "boards/board.html"
    context = {
        "board": board,
        "filter_form": filter_form,
        **selectors.board_filter_choices(stream=stream),
    }
    return render(request, template, context)


@require_GET
def column_more(request: HttpRequest, stream_slug: str, column_id: int) -> HttpResponse:
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    filter_form = BoardFilterForm(request.GET)
    offset_text = request.GET.get("offset", "0")
    offset = int(offset_text) if offset_text.isdigit() else 0
    filters = filter_form.filters()
    column, cards, has_more = selectors.column_cards_page(
        stream=stream, column_id=column_id, filters=filters, offset=offset
    )
    context = {
        "stream": stream,
        "column": column,
        "cards": cards,
        "has_more": has_more,
        "next_offset": offset + len(cards),
        "filter_query": filters.querystring(),
    }
    return render(request, "boards/partials/more_cards.html", context)
