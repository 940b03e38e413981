"""Helpers shared by the board's views: rendering refreshed columns and messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django_htmx.http import trigger_client_event

from boards import selectors
from boards.errors import WipLimitReached
from boards.forms import board_filters
from boards.services import MoveResult
from vsm.actors import request_actor
from vsm.errors import DomainError, Stale
from vsm.http import HtmxHttpRequest, respond_to_refusals
from vsm.models import ValueStream


def board_context(
    request: HtmxHttpRequest, stream: ValueStream, *, query: QueryDict | None = None
) -> dict:
    """What every board answer renders with; its filters from ``query`` (default: the
    request's query string)."""
    return {
        "stream": stream,
        "can_manage": selectors.viewer_manages_stream(actor=request_actor(request), stream=stream),
        "filters": board_filters(
            request.GET if query is None else query, viewer_id=request.user.pk
        ),
    }


def columns_response(
    request: HtmxHttpRequest,
    stream: ValueStream,
    column_ids: Iterable[int],
    *,
    message: str = "",
    level: str = "success",
    extra: dict | None = None,
    close_dialog: bool = False,
    shown: Mapping[int, int] | None = None,
) -> HttpResponse:
    """Fresh columns swapped out of band, with a toast.

    ``shown``: as many cards as to show of some columns (selectors.board_columns).

    A refused move answers 200 with the columns as they really are, so the dragged
    card snaps back and a stale view is refreshed: htmx 2 does not swap 4xx bodies.
    """
    context = board_context(request, stream)
    context.update(
        column_views=selectors.board_columns(
            stream=stream, column_ids=column_ids, filters=context["filters"], shown=shown
        ),
        message=message,
        level=level,
        **(extra or {}),
    )
    response = render(request, "boards/partials/columns_oob.html", context)
    if close_dialog:
        trigger_client_event(response, "vsm:close-dialog", after="settle")
    return response


def refuse_with_columns(
    request: HtmxHttpRequest,
    stream: ValueStream,
    column_ids: Iterable[int],
    *,
    override_card_id: int | None = None,
) -> None:
    """Answer this request's refusals with the columns involved as they really are
    (so a dragged card snaps back), plus any column the error names, and a toast.

    ``override_card_id``: on a full column, offer those who steer the stream to move
    this card anyway (with a reason for the log). A dialog open (e.g. "Move to...")
    is closed: it shows the state the refusal is about, and would hide the toast.
    A plain form post gets the message and the board instead.
    """
    involved = list(column_ids)

    def respond(error: DomainError) -> HttpResponse:
        message = error.message
        if isinstance(error, Stale):
            message += " The board now shows the current state."
        if not request.htmx:
            return back_to_board(request, stream, message, error=True)
        extra = {}
        if (
            isinstance(error, WipLimitReached)
            and override_card_id is not None
            and selectors.viewer_manages_stream(actor=request_actor(request), stream=stream)
        ):
            extra["override_offer"] = {
                "card_id": override_card_id,
                "to_column_id": error.column_id,
                # As the refreshed board shows it: the override is refused as stale if
                # someone moves the card meanwhile, rather than moving it from there.
                "version": selectors.card_version(stream=stream, card_id=override_card_id),
            }
        named = error.data.get("column_id")
        columns = [*involved, named] if isinstance(named, int) else involved
        # board_columns keeps only this stream's columns, whatever ids the client sent.
        return columns_response(
            request, stream, columns, message=message, level="error", extra=extra, close_dialog=True
        )

    respond_to_refusals(request, respond)


def move_done_response(
    request: HtmxHttpRequest, stream: ValueStream, result: MoveResult, *, message: str = ""
) -> HttpResponse:
    """The answer to an accepted drag: the two column heads and the card, out of band.

    The browser already shows the card where it was dropped: refresh the counts and
    the card (its new version) only, which keeps a drag's answer small. The columns
    and their counts come from the move itself, read under its locks.
    """
    context = board_context(request, stream)
    context.update(
        column_views=selectors.column_heads(
            stream=stream,
            columns=result.columns,
            open_counts=result.open_counts,
            open_values=result.open_values,
        ),
        card=result.card,
        message=message,
        level="warning",
    )
    return render(request, "boards/partials/move_done.html", context)


def back_to_board(
    request: HtmxHttpRequest, stream: ValueStream, message: str, *, error: bool = False
) -> HttpResponse:
    """The answer to a plain (no JavaScript) form post: a message and the board."""
    (messages.error if error else messages.success)(request, message)
    return redirect("boards:board", stream_slug=stream.slug)
