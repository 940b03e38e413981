"""Helpers shared by the board's views: rendering refreshed columns and messages."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import trigger_client_event

from boards import selectors
from boards.forms import board_filters
from boards.services import MoveResult
from vsm.models import ValueStream


def board_context(request: HttpRequest, stream: ValueStream) -> dict:
    return {
        "stream": stream,
        "can_manage": selectors.viewer_manages_stream(user=request.user, stream=stream),
        "filters": board_filters(request.GET),
    }


def columns_response(
    request: HttpRequest,
    stream: ValueStream,
    column_ids: Iterable[int],
    *,
    message: str = "",
    level: str = "success",
    extra: dict | None = None,
    close_dialog: bool = False,
) -> HttpResponse:
    """Fresh columns swapped out of band, with a toast.

    A refused move answers 200 with the columns as they really are, so the dragged
    card snaps back and a stale view is refreshed: htmx 2 does not swap 4xx bodies.
    """
    context = board_context(request, stream)
    context.update(
        column_views=selectors.board_columns(
            stream=stream, column_ids=column_ids, filters=context["filters"]
        ),
        message=message,
        level=level,
        **(extra or {}),
    )
    response = render(request, "boards/partials/columns_oob.html", context)
    if close_dialog:
        trigger_client_event(response, "vsm:close-dialog", after="settle")
    return response


def move_done_response(
    request: HttpRequest, stream: ValueStream, result: MoveResult, *, message: str = ""
) -> HttpResponse:
    """The answer to an accepted drag: the two column heads and the card, out of band.

    The browser already shows the card where it was dropped: refresh the counts and
    the card (its new version) only, which keeps a drag's answer small. The columns
    and their counts come from the move itself, read under its locks.
    """
    context = board_context(request, stream)
    context.update(
        column_views=selectors.column_heads(
            stream=stream, columns=result.columns, open_counts=result.open_counts
        ),
        card=result.card,
        message=message,
        level="warning",
    )
    return render(request, "boards/partials/move_done.html", context)


def back_to_board(
    request: HttpRequest, stream: ValueStream, message: str, *, error: bool = False
) -> HttpResponse:
    """The answer to a plain (no JavaScript) form post: a message and the board."""
    (messages.error if error else messages.success)(request, message)
    return redirect("boards:board", stream_slug=stream.slug)
