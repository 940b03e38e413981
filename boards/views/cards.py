"""Card work: move, hand off, create, edit, block, close and reopen.

Every view answers an htmx request with fragments (refreshed columns out of band and
a toast) and a plain form post with a redirect and a message, so the board works
with the keyboard and without JavaScript too.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from boards import selectors, services
from boards.errors import BoardError, WipLimitReached
from boards.forms import BlockForm, CardCreateForm, CardForm, CardMoveForm, HandoffForm, VersionForm
from boards.models import Column, Outcome
from boards.views.common import (
    back_to_board,
    columns_response,
    move_done_response,
)
from pdca.models import Cycle
from vsm.models import Channel


def _card_page(request: HttpRequest, stream_slug: str, card_id: int):
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    return stream, selectors.card_for_user(stream=stream, card_id=card_id)


@require_POST
def card_move(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, column_id = selectors.stream_and_card_column_for_user(
        user=request.user, slug=stream_slug, card_id=card_id
    )
    form = CardMoveForm(request.POST)
    if not form.is_valid():
        return _refused(request, stream, [column_id], "That move could not be read.")
    data = form.cleaned_data
    try:
        result = services.card_move(
            card_id=card_id,
            to_column_id=data["to_column"],
            actor=request.user,
            expected_version=data["version"],
            after_card_id=data["after"],
            before_card_id=data["before"],
            wip_override_reason=data["override_reason"],
            expected_column_id=column_id,
        )
    except WipLimitReached as refusal:
        can_override = selectors.viewer_manages_stream(user=request.user, stream=stream)
        offer = {"card_id": card_id, "to_column_id": data["to_column"]}
        extra = {"override_offer": offer} if can_override else {}
        return _refused(request, stream, [column_id, data["to_column"]], str(refusal), extra)
    except BoardError as refusal:
        return _refused(request, stream, [column_id, data["to_column"]], str(refusal))
    message = ""
    if result.move is not None and result.move.wip_override_reason:
        message = f"Moved over the WIP limit of {result.card.column.name}; the reason is logged."
    if not request.htmx:
        return back_to_board(request, stream, message or f"{result.card} moved.")
    if data["dragged"]:
        return move_done_response(request, stream, result, message=message)
    return columns_response(
        request,
        stream,
        result.column_ids,
        message=message or f"{result.card} moved.",
        close_dialog=True,
    )


def _refused(request, stream, column_ids, message: str, extra: dict | None = None):
    if not request.htmx:
        return back_to_board(request, stream, message, error=True)
    # board_columns keeps only this stream's columns, whatever ids the client sent.
    return columns_response(
        request, stream, column_ids, message=message, level="error", extra=extra
    )


@require_GET
def card_move_menu(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """'Move to...': every destination of the card, for the keyboard and screen readers."""
    stream, card = _card_page(request, stream_slug, card_id)
    context = {
        "stream": stream,
        "card": card,
        "destinations": selectors.move_destinations(card=card),
    }
    template = "boards/card_move_menu.html#dialog" if request.htmx else "boards/card_move_menu.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def card_handoff(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """The control point's checklist; passing it hands the card to the next cycle."""
    stream, card = _card_page(request, stream_slug, card_id)
    to_column_id = request.GET.get("to_column") or request.POST.get("to_column") or ""
    to_column = get_object_or_404(
        Column.objects.select_related("cycle"),
        pk=int(to_column_id) if to_column_id.isdigit() else 0,
        cycle__value_stream=stream,
    )
    control_point = selectors.control_point_between(card=card, to_column=to_column)
    form = HandoffForm(
        request.POST or None, criteria=control_point.criteria.all() if control_point else ()
    )
    error = ""
    if control_point is None:
        error = (
            f"No control point leads from {card.column.cycle.name} to {to_column.cycle.name}: "
            "cards pass the cycles in order."
        )
    elif request.method == "POST" and not form.is_valid():
        error = "That checklist could not be read; tick the criteria again."
    elif request.method == "POST":
        try:
            result = services.handoff_pass(
                card_id=card.pk,
                control_point_id=control_point.pk,
                criteria_met_ids=form.cleaned_data["criteria"],
                actor=request.user,
                expected_version=form.cleaned_data["version"],
                wip_override_reason=form.cleaned_data["override_reason"],
            )
        except BoardError as refusal:
            error = str(refusal)
        else:
            message = f"{card} handed off to {control_point.to_cycle.name}."
            if not request.htmx:
                return back_to_board(request, stream, message)
            return columns_response(
                request, stream, result.column_ids, message=message, close_dialog=True
            )
    context = {
        "stream": stream,
        "card": card,
        "to_column": to_column,
        "control_point": control_point,
        "form": form,
        "error": error,
        "can_manage": selectors.viewer_manages_stream(user=request.user, stream=stream),
    }
    template = "boards/card_handoff.html#dialog" if request.htmx else "boards/card_handoff.html"
    return render(request, template, context)


def _card_form_choices(stream) -> dict:
    return {
        "channels": Channel.objects.filter(value_stream=stream, is_active=True),
        "owners": selectors.stream_members(stream=stream),
    }


@require_http_methods(["GET", "POST"])
def card_create(request: HttpRequest, stream_slug: str) -> HttpResponse:
    stream = selectors.stream_for_user(user=request.user, slug=stream_slug)
    form = CardCreateForm(
        request.POST or None,
        cycles=Cycle.objects.filter(value_stream=stream).order_by("order"),
        initial={"owner": request.user.pk},
        **_card_form_choices(stream),
    )
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        first_column = Column.objects.filter(cycle=data["cycle"]).order_by("order").first()
        try:
            if first_column is None:
                raise BoardError(f"{data['cycle'].name} has no columns yet.")
            result = services.card_create(
                column_id=first_column.pk,
                actor=request.user,
                person_name=data["person_name"],
                company=data["company"],
                email=data["email"],
                channel_id=data["channel"].pk if data["channel"] else None,
                owner=data["owner"],
                estimated_value=data["estimated_value"],
                notes=data["notes"],
                wip_override_reason=data["override_reason"],
            )
        except BoardError as refusal:
            error = str(refusal)
        else:
            message = f"{result.card} entered {first_column.cycle.name}."
            if not request.htmx:
                return back_to_board(request, stream, message)
            return columns_response(
                request, stream, result.column_ids, message=message, close_dialog=True
            )
    context = {"stream": stream, "form": form, "error": error}
    template = "boards/card_create.html#dialog" if request.htmx else "boards/card_create.html"
    return render(request, template, context)


@require_GET
def card_detail(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, card = _card_page(request, stream_slug, card_id)
    form = CardForm(
        initial={
            "person_name": card.person_name,
            "company": card.company,
            "email": card.email,
            "channel": card.channel_id,
            "owner": card.owner_id,
            "estimated_value": card.estimated_value,
            "notes": card.notes,
        },
        **_card_form_choices(stream),
    )
    return _render_detail(request, stream, card, form)


def _render_detail(request, stream, card, form, error: str = "", status: int = 200):
    context = {
        "stream": stream,
        "card": card,
        "form": form,
        "error": error,
        "history": selectors.card_history(card=card),
        "destinations": selectors.move_destinations(card=card) if card.is_open else [],
    }
    return render(request, "boards/card_detail.html", context, status=status)


@require_POST
def card_edit(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, card = _card_page(request, stream_slug, card_id)
    form = CardForm(request.POST, **_card_form_choices(stream))
    version = VersionForm(request.POST)
    if not (form.is_valid() and version.is_valid()):
        return _render_detail(request, stream, card, form, status=400)
    data = form.cleaned_data
    try:
        services.card_update(
            card_id=card.pk,
            actor=request.user,
            expected_version=version.cleaned_data["version"],
            person_name=data["person_name"],
            company=data["company"],
            email=data["email"],
            channel_id=data["channel"].pk if data["channel"] else None,
            owner_id=data["owner"].pk if data["owner"] else None,
            estimated_value=data["estimated_value"],
            notes=data["notes"],
        )
    except BoardError as refusal:
        card.refresh_from_db()
        return _render_detail(request, stream, card, form, error=str(refusal), status=409)
    return _back_to_card(request, stream, card, "Saved.")


def _back_to_card(request, stream, card, message: str, *, error: bool = False):
    (messages.error if error else messages.success)(request, message)
    return redirect("boards:card-detail", stream_slug=stream.slug, card_id=card.pk)


@require_POST
def card_block(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, card = _card_page(request, stream_slug, card_id)
    form = BlockForm(request.POST)
    blocked = request.POST.get("action") != "unblock"
    try:
        if not form.is_valid():
            raise BoardError("That request could not be read.")
        services.card_set_blocked(
            card_id=card.pk,
            blocked=blocked,
            reason=form.cleaned_data["reason"],
            actor=request.user,
            expected_version=form.cleaned_data["version"],
        )
    except BoardError as refusal:
        return _back_to_card(request, stream, card, str(refusal), error=True)
    return _back_to_card(request, stream, card, "Blocked." if blocked else "Unblocked.")


@require_POST
def card_close(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, card = _card_page(request, stream_slug, card_id)
    outcome = Outcome.WON if request.POST.get("outcome") == Outcome.WON else Outcome.LOST
    form = VersionForm(request.POST)
    try:
        if not form.is_valid():
            raise BoardError("That request could not be read.")
        services.card_close(
            card_id=card.pk,
            outcome=outcome,
            actor=request.user,
            expected_version=form.cleaned_data["version"],
        )
    except BoardError as refusal:
        return _back_to_card(request, stream, card, str(refusal), error=True)
    return _back_to_card(request, stream, card, f"Marked {outcome.label.lower()}.")


@require_POST
def card_reopen(request: HttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, card = _card_page(request, stream_slug, card_id)
    form = VersionForm(request.POST)
    try:
        if not form.is_valid():
            raise BoardError("That request could not be read.")
        services.card_reopen(
            card_id=card.pk,
            actor=request.user,
            expected_version=form.cleaned_data["version"],
            wip_override_reason=form.cleaned_data["override_reason"],
        )
    except BoardError as refusal:
        return _back_to_card(request, stream, card, str(refusal), error=True)
    return _back_to_card(request, stream, card, "Reopened.")
