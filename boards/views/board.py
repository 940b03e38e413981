from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from boards import selectors, services
from boards.errors import BoardError
from boards.forms import BoardFilterForm, WipLimitForm
from boards.models import Column
from boards.views.common import (
    back_to_board,
    board_context,
    columns_response,
)


@require_GET
def stream_list(request: HttpRequest) -> HttpResponse:
    streams = selectors.value_streams_for_user(user=request.user)
    return render(request, "boards/stream_list.html", {"streams": streams})


@require_GET
def board(request: HttpRequest, stream_slug: str) -> HttpResponse:
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    filter_form = BoardFilterForm(request.GET)
    context = board_context(request, stream)
    context.update(
        board=selectors.board_get(stream=stream, filters=context["filters"]),
        filter_form=filter_form,
        **selectors.board_filter_choices(stream=stream),
    )
    template = "boards/board.html#board" if request.htmx else "boards/board.html"
    return render(request, template, context)


@require_GET
def board_poll(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """Live updates: 204 while the board is unchanged, else the fresh board."""
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    if request.GET.get("version") == selectors.board_version(stream=stream):
        return HttpResponse(status=204)
    context = board_context(request, stream)
    context["board"] = selectors.board_get(stream=stream, filters=context["filters"])
    return render(request, "boards/board.html#board", context)


@require_GET
def column_more(request: HttpRequest, stream_slug: str, column_id: int) -> HttpResponse:
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    filters = BoardFilterForm(request.GET).filters()
    offset_text = request.GET.get("offset", "0")
    offset = int(offset_text) if offset_text.isdigit() else 0
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


@require_POST
def column_wip_limit(request: HttpRequest, stream_slug: str, column_id: int) -> HttpResponse:
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    column = get_object_or_404(Column, pk=column_id, cycle__value_stream=stream)
    form = WipLimitForm(request.POST)
    if not form.is_valid():
        message, error = "A WIP limit is empty or a whole number of at least 1.", True
    else:
        try:
            services.column_set_wip_limit(
                column_id=column.pk, wip_limit=form.cleaned_data["wip_limit"], actor=request.user
            )
            message, error = f"WIP limit of {column.name} saved.", False
        except BoardError as refusal:
            message, error = str(refusal), True
    if not request.htmx:
        return back_to_board(request, stream, message, error=error)
    level = "error" if error else "success"
    return columns_response(request, stream, [column.pk], message=message, level=level)
