"""A stream's exports as downloads: its cards and its move log as streamed CSV, the
dashboard's tables as a ZIP of CSVs. For whoever may see the stream (vsm.access);
anyone else gets "not found". Each export is recorded in the audit log."""

from __future__ import annotations

from typing import cast

from django import forms
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from boards.forms import board_filters_checked
from boards.selectors import BoardFilters
from exports import files, selectors
from exports.forms import include_closed
from exports.services import ExportKind, stream_export_record
from metrics.views.dashboard import dashboard_filter_form
from vsm.access import stream_access
from vsm.actors import request_actor
from vsm.errors import DataValue, InvalidInput
from vsm.http import HtmxHttpRequest


@require_GET
def cards_csv(request: HtmxHttpRequest, stream_slug: str) -> StreamingHttpResponse:
    """The stream's cards with the board's filters (its query parameters); ``closed=1``:
    won and lost ones too."""
    actor = request_actor(request)
    stream = stream_access(actor=actor, slug=stream_slug)
    query = selectors.CardExportQuery(
        stream=stream,
        now=timezone.now(),
        filters=board_filters_checked(request.GET, viewer_id=request.user.pk),
        include_closed=include_closed(request.GET),
    )
    data = _filters_data(query.filters) | {"include_closed": query.include_closed}
    stream_export_record(actor=actor, stream=stream, kind=ExportKind.CARDS, data=data)
    return files.csv_download(
        selectors.CARD_COLUMNS,
        selectors.card_export_chunks(query),
        filename=files.export_filename(stream, "cards", "csv", now=query.now),
    )


def _filters_data(filters: BoardFilters) -> dict[str, DataValue]:
    """The board filters as the audit log may hold them: ids and flags, no search text."""
    return {
        "channel_id": filters.channel_id,
        "owner_id": filters.owner_id,
        "column_id": filters.column_id,
        "blocked_only": filters.blocked_only,
        "mine": filters.mine,
        "text_filter": bool(filters.text),
    }


@require_GET
def move_log_csv(request: HtmxHttpRequest, stream_slug: str) -> StreamingHttpResponse:
    """The stream's whole move log, up to the newest move when the export starts."""
    actor = request_actor(request)
    stream = stream_access(actor=actor, slug=stream_slug)
    through = selectors.move_log_end(stream=stream)
    data = {"through_move_id": through}
    stream_export_record(actor=actor, stream=stream, kind=ExportKind.MOVE_LOG, data=data)
    return files.csv_download(
        selectors.MOVE_COLUMNS,
        selectors.move_log_chunks(stream=stream, through_move_id=through),
        filename=files.export_filename(stream, "move-log", "csv", now=timezone.now()),
    )


@require_GET
def metrics_tables_zip(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    """The dashboard's tables for the dashboard's filters (its query parameters).

    Raises: InvalidInput when a filter cannot be read (the page would show the error
    and fall back to its default; a file says nothing, so it is refused instead).
    """
    actor = request_actor(request)
    stream = stream_access(actor=actor, slug=stream_slug)
    form = dashboard_filter_form(request, stream)
    if form.errors:
        raise InvalidInput(f"The dashboard's filters could not be read. {_problems(form)}")
    query = form.query()
    data = {"cycle_id": query.cycle_id, "channel_key": query.channel_key, "weeks": query.weeks}
    stream_export_record(actor=actor, stream=stream, kind=ExportKind.METRICS, data=data)
    content = files.metrics_zip(
        selectors.metrics_tables(query),
        cycle=_choice_label(form, "cycle", query.cycle_id),
        channel=_choice_label(form, "channel", query.channel_key),
    )
    return files.zip_download(
        content, filename=files.export_filename(stream, "metrics", "zip", now=timezone.now())
    )


def _problems(form: forms.Form) -> str:
    """A form's errors in one line: "Start: Enter a valid date.; Cycle: ..."."""
    return "; ".join(
        f"{name.capitalize()}: {' '.join(str(error) for error in errors)}"
        if name in form.fields
        else " ".join(str(error) for error in errors)
        for name, errors in form.errors.items()
    )


def _choice_label(form: forms.Form, name: str, value: int | None) -> str:
    """How the dashboard's filter ``name`` names ``value`` ("All cycles", "Web form")."""
    wanted = "" if value is None else str(value)
    # Lists of (value, label): set by DashboardFilterForm.__init__.
    choices = cast(list[tuple[object, object]], cast(forms.ChoiceField, form.fields[name]).choices)
    return next((str(label) for key, label in choices if str(key) == wanted), wanted)
