"""A prospect's personal data: its export (JSON, CSV) and its erasure, for an admin or
the stream's manager (the rule is the services')."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from boards import selectors, services
from boards.views.cards import _card_page
from vsm.access import stream_steer_check
from vsm.actors import request_actor
from vsm.forms import RowIdField
from vsm.http import HtmxHttpRequest, form_status, refusals_shown_on
from vsm.spreadsheet import write_spreadsheet_rows


class ErasureForm(forms.Form):
    version = RowIdField()
    confirm = forms.BooleanField(
        label="I understand that this cannot be undone.",
        error_messages={"required": "Tick the box to confirm the erasure."},
    )


def _erasure_message(erasure: services.Erasure) -> str:
    parts = [
        f"{count} {what}"
        for count, what in (
            (erasure.comments, "comment(s)"),
            (erasure.edits, "edit(s)"),
            (erasure.blockings, "block reason(s)"),
            (erasure.lost_notes, "lost note(s)"),
            (erasure.override_reasons, "WIP override reason(s)"),
        )
        if count
    ]
    blanked = f" and {', '.join(parts)}" if parts else ""
    suppressed = (
        " Its e-mail address is on the suppression list: no card can carry it again."
        if erasure.suppressed
        else ""
    )
    return f"Personal data erased: the card's name, company, e-mail and notes{blanked}.{suppressed}"


@require_http_methods(["GET", "POST"])
def card_personal_data(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """The prospect's personal data page: export it, or erase it (with a confirmation)."""
    stream, card = _card_page(request, stream_slug, card_id)
    actor = request_actor(request)
    stream_steer_check(actor=actor, stream=stream, what="see a prospect's personal data page")
    form = ErasureForm(request.POST or None, initial={"version": card.version})
    if request.method == "POST" and form.is_valid():
        with refusals_shown_on(form, request):
            erasure = services.prospect_erase(
                card_id=card.pk, actor=actor, expected_version=form.cleaned_data["version"]
            )
        if not form.errors:
            messages.success(request, _erasure_message(erasure))
            return redirect("boards:card-detail", stream_slug=stream.slug, card_id=card.pk)
        card = selectors.card_in_stream(stream=stream, card_id=card.pk)
    context = {"stream": stream, "card": card, "form": form}
    status = form_status(request, form)
    return render(request, "boards/card_personal_data.html", context, status=status)


@require_GET
def card_personal_data_export(
    request: HtmxHttpRequest, stream_slug: str, card_id: int, file_format: str
) -> HttpResponse:
    """Everything held about the prospect, as a JSON or CSV download."""
    stream, card = _card_page(request, stream_slug, card_id)
    services.prospect_export_audit(card_id=card.pk, actor=request_actor(request))
    export = selectors.prospect_export(card=card)
    name = f"prospect-{card.pk}"
    if file_format == "json":
        response = HttpResponse(
            json.dumps(export, indent=2, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )
    else:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        rows = selectors.prospect_export_rows(export)
        write_spreadsheet_rows(response, [selectors.PROSPECT_CSV_HEADER, *rows])
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
    return response
