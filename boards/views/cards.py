"""Card work: move, hand off, create, edit, block, close and reopen.

Every view answers an htmx request with fragments (refreshed columns out of band and
a toast) and a plain form post with a redirect and a message, so the board works
with the keyboard and without JavaScript too. Refusals are answered in one place
(``vsm.http``): the board's columns as they are, or the form with the error on it.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from boards import selectors, services
from boards.errors import LostReasonRefused, StaleBoard, WipLimitReached
from boards.forms import (
    BlockForm,
    CardCreateForm,
    CardForm,
    CardMoveForm,
    CloseForm,
    CommentForm,
    HandoffForm,
    HandoffTargetForm,
    ReopenForm,
    VersionForm,
    shown_cards,
)
from boards.models import Card
from boards.views.common import (
    back_to_board,
    columns_response,
    move_done_response,
    refuse_with_columns,
)
from vsm.actors import request_actor
from vsm.errors import InvalidInput
from vsm.http import HtmxHttpRequest, form_status, refusals_shown_on, refuse_back_to
from vsm.models import ValueStream

# A name in a toast: a 200-character company name would fill the screen and push out
# what happened to it (the card itself shows the whole name).
TOAST_NAME_CHARS = 60


def _toast_name(card: Card) -> str:
    return Truncator(card.display_name).chars(TOAST_NAME_CHARS)


def _card_page(
    request: HtmxHttpRequest, stream_slug: str, card_id: int
) -> tuple[ValueStream, Card]:
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    return stream, selectors.card_in_stream(stream=stream, card_id=card_id)


@require_POST
def card_move(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, column_id = selectors.stream_and_card_column_for_actor(
        actor=request_actor(request), slug=stream_slug, card_id=card_id
    )
    form = CardMoveForm(request.POST)
    if not form.is_valid():
        refuse_with_columns(request, stream, [column_id])
        raise InvalidInput("That move could not be read.")
    data = form.cleaned_data
    refuse_with_columns(request, stream, [column_id, data["to_column"]], override_card_id=card_id)
    result = services.card_move(
        card_id=card_id,
        to_column_id=data["to_column"],
        actor=request_actor(request),
        expected_version=data["version"],
        after_card_id=data["after"],
        before_card_id=data["before"],
        wip_override_reason=data["override_reason"],
        expected_column_id=column_id,
    )
    message = ""
    if result.unchanged:
        message = (
            f"{_toast_name(result.card)} is already in {result.card.column.name}; nothing moved."
        )
    elif result.move is not None and result.move.wip_override_reason:
        message = f"Moved over the WIP limit of {result.card.column.name}; the reason is logged."
    if not request.htmx:
        return back_to_board(request, stream, message or f"{_toast_name(result.card)} moved.")
    if data["dragged"]:
        return move_done_response(request, stream, result, message=message)
    # The card went to the end of its column: show the column down to it, so focus
    # can return to it (board.js), with as many cards of the others as the client shows.
    shown = shown_cards(request.POST) | {result.card.column_id: selectors.COLUMN_SHOWN_MAX}
    return columns_response(
        request,
        stream,
        result.column_ids,
        message=message or f"{_toast_name(result.card)} moved.",
        close_dialog=True,
        shown=shown,
    )


@require_GET
def card_move_menu(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """'Move to...': every destination of the card, for the keyboard and screen readers;
    full columns are marked, and a manager may override their limit from here."""
    stream, card = _card_page(request, stream_slug, card_id)
    context = {
        "stream": stream,
        "card": card,
        "destinations": selectors.move_menu(card=card),
        "can_manage": selectors.viewer_manages_stream(actor=request_actor(request), stream=stream),
    }
    template = "boards/card_move_menu.html#dialog" if request.htmx else "boards/card_move_menu.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def card_handoff(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """The control point's checklist; passing it hands the card to the next cycle."""
    stream, card = _card_page(request, stream_slug, card_id)
    target = HandoffTargetForm(request.POST if request.method == "POST" else request.GET)
    if not target.is_valid():
        raise InvalidInput("Say which column the card goes to.", field="to_column")
    to_column = selectors.column_in_stream(
        stream=stream, column_id=target.cleaned_data["to_column"]
    )
    control_point = selectors.control_point_between(card=card, to_column=to_column)
    form = HandoffForm(
        request.POST or None, criteria=control_point.criteria.all() if control_point else ()
    )
    no_route = ""
    if control_point is None:
        no_route = (
            f"No control point leads from {card.column.cycle.name} to {to_column.cycle.name}: "
            "cards pass the cycles in order."
        )
    elif request.method == "POST" and form.is_valid():
        with refusals_shown_on(form, request):
            result = services.handoff_pass(
                card_id=card.pk,
                control_point_id=control_point.pk,
                criteria_met_ids=form.cleaned_data["criteria"],
                actor=request_actor(request),
                expected_version=form.cleaned_data["version"],
                wip_override_reason=form.cleaned_data["override_reason"],
            )
        if not form.errors:
            message = f"{_toast_name(card)} handed off to {control_point.to_cycle.name}."
            if not request.htmx:  # the handoff page, from the card page
                return _back_to_card(request, stream, card, message)
            return columns_response(
                request, stream, result.column_ids, message=message, close_dialog=True
            )
    context = {
        "stream": stream,
        "card": card,
        "to_column": to_column,
        "control_point": control_point,
        "form": form,
        "no_route": no_route,
        "can_manage": selectors.viewer_manages_stream(actor=request_actor(request), stream=stream),
        "page": not request.htmx,
    }
    template = "boards/card_handoff.html#dialog" if request.htmx else "boards/card_handoff.html"
    return render(request, template, context, status=form_status(request, form))


@require_http_methods(["GET", "POST"])
def card_create(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    stream = selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    form = CardCreateForm(
        request.POST or None,
        cycles=selectors.stream_cycles(stream=stream),
        can_override=selectors.viewer_manages_stream(actor=request_actor(request), stream=stream),
        initial={"owner": request.user.pk},
        **selectors.card_form_choices(stream=stream),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with refusals_shown_on(form, request):
            result = services.card_create(
                cycle_id=data["cycle"].pk,
                stream_id=stream.pk,
                actor=request_actor(request),
                person_name=data["person_name"],
                company=data["company"],
                email=data["email"],
                channel_id=data["channel"].pk if data["channel"] else None,
                owner_id=data["owner"].pk if data["owner"] else None,
                estimated_value=data["estimated_value"],
                notes=data["notes"],
                wip_override_reason=data.get("override_reason", ""),
            )
        if not form.errors:
            message = f"{_toast_name(result.card)} entered {data['cycle'].name}."
            if not request.htmx:
                return back_to_board(request, stream, message)
            # The new card is the last of its column: show the column down to it, and
            # have board.js scroll it into view and highlight it.
            response = columns_response(
                request,
                stream,
                result.column_ids,
                message=message,
                close_dialog=True,
                shown=shown_cards(request.POST)
                | {result.card.column_id: selectors.COLUMN_SHOWN_MAX},
            )
            trigger_client_event(
                response, "vsm:card-added", {"card_id": result.card.pk}, after="settle"
            )
            return response
    context = {"stream": stream, "form": form}
    template = "boards/card_create.html#dialog" if request.htmx else "boards/card_create.html"
    return render(request, template, context, status=form_status(request, form))


@require_GET
def card_detail(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """The card page. ``older`` (a timeline cursor): its history from there on, in the
    page, or for htmx ("Show older") those entries alone."""
    stream, card = _card_page(request, stream_slug, card_id)
    before = selectors.TimelineCursor.parse(request.GET.get("older", ""))
    if request.htmx and before is not None:
        context = {
            "stream": stream,
            "card": card,
            "timeline": selectors.card_timeline(card=card, before=before),
        }
        return render(request, "boards/card_detail.html#timeline-page", context)
    return _render_detail(request, stream, card, _card_form(stream, card), before=before)


def _card_form(stream: ValueStream, card: Card) -> CardForm:
    return CardForm(
        initial={
            "person_name": card.person_name,
            "company": card.company,
            "email": card.email,
            "channel": card.channel_id,
            "owner": card.owner_id,
            "estimated_value": card.estimated_value,
            "notes": card.notes,
        },
        **selectors.card_form_choices(stream=stream, card=card),
    )


def _render_detail(
    request: HtmxHttpRequest,
    stream: ValueStream,
    card: Card,
    form: CardForm,
    *,
    comment_form: CommentForm | None = None,
    before: selectors.TimelineCursor | None = None,
) -> HttpResponse:
    """The card page, with ``form`` (the facts) and ``comment_form`` as given (refused,
    with what was typed) or new; its status is the refused form's."""
    comment_form = comment_form or CommentForm()
    context = {
        "stream": stream,
        "card": card,
        "form": form,
        "comment_form": comment_form,
        "timeline": selectors.card_timeline(card=card, before=before),
        "destinations": selectors.move_destinations(card=card) if card.is_open else [],
    }
    status = form_status(request, form if form.errors else comment_form)
    return render(request, "boards/card_detail.html", context, status=status)


@require_POST
def card_edit(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, card = _card_page(request, stream_slug, card_id)
    form = CardForm(request.POST, **selectors.card_form_choices(stream=stream, card=card))
    version = VersionForm(request.POST)
    if form.is_valid() and version.is_valid():
        data = form.cleaned_data
        with refusals_shown_on(form, request):
            services.card_update(
                card_id=card.pk,
                actor=request_actor(request),
                expected_version=version.cleaned_data["version"],
                person_name=data["person_name"],
                company=data["company"],
                email=data["email"],
                channel_id=data["channel"].pk if data["channel"] else None,
                owner_id=data["owner"].pk if data["owner"] else None,
                estimated_value=data["estimated_value"],
                notes=data["notes"],
            )
        if not form.errors:
            return _back_to_card(request, stream, card, "Saved.")
        card = selectors.card_in_stream(stream=stream, card_id=card.pk)
        if isinstance(getattr(form, "refusal", None), StaleBoard):
            _mark_changed_meanwhile(form, card)
    elif not version.is_valid():
        form.add_error(None, "That request could not be read; reload the card.")
    return _render_detail(request, stream, card, form)


def _mark_changed_meanwhile(form: CardForm, card: Card) -> None:
    """After a stale save: say, on each field, what someone else saved meanwhile where it
    differs from what is typed here. The page now holds the card's new version, so
    saving again is a choice made knowing what it replaces, not a silent overwrite."""
    typed = form.cleaned_data
    now = {
        "person_name": (card.person_name, card.person_name),
        "company": (card.company, card.company),
        "email": (card.email, card.email),
        "channel": (card.channel_id, card.channel.name if card.channel else "no channel"),
        "owner": (card.owner_id, str(card.owner) if card.owner else "no owner"),
        "estimated_value": (card.estimated_value, f"{card.estimated_value:,}"),
        "notes": (card.notes, card.notes),
    }
    for name, (value, shown) in now.items():
        mine = typed.get(name)
        mine = getattr(mine, "pk", mine)
        if mine != value and (mine or value):
            form.add_error(
                name,
                f"Saved meanwhile as “{Truncator(shown).chars(80)}”; saving again replaces"
                " it with what is typed here.",
            )


def _back_to_card(request: HtmxHttpRequest, stream: ValueStream, card: Card, message: str):
    messages.success(request, message)
    return redirect("boards:card-detail", stream_slug=stream.slug, card_id=card.pk)


@require_POST
def card_block(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    stream, card = _card_page(request, stream_slug, card_id)
    refuse_back_to(request, reverse("boards:card-detail", args=[stream.slug, card.pk]))
    form = BlockForm(request.POST)
    if not form.is_valid():
        reasons = [str(message) for message in form.errors.get("reason", [])]
        raise InvalidInput(" ".join(reasons) or InvalidInput.default_message, field="reason")
    blocked = form.cleaned_data["action"] != "unblock"
    services.card_set_blocked(
        card_id=card.pk,
        blocked=blocked,
        reason=form.cleaned_data["reason"],
        actor=request_actor(request),
        expected_version=form.cleaned_data["version"],
    )
    return _back_to_card(request, stream, card, "Blocked." if blocked else "Unblocked.")


@require_http_methods(["GET", "POST"])
def card_close(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """Close a deal: won in one click, lost with why. The card page then offers to undo
    it; a refused reason is shown on this page's form, keeping what was typed; any other
    refusal goes back to the card page with its message."""
    stream, card = _card_page(request, stream_slug, card_id)
    refuse_back_to(request, reverse("boards:card-detail", args=[stream.slug, card.pk]))
    form = CloseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.unreadable():
            raise InvalidInput()
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = services.card_close(
                    card_id=card.pk,
                    outcome=data["outcome"],
                    actor=request_actor(request),
                    expected_version=data["version"],
                    lost_reason_id=data["lost_reason"],
                    lost_note=data["lost_note"],
                )
            except LostReasonRefused as error:
                form.add_error(error.field, error.message)
            else:
                return _closed_card_page(request, stream, result)
    context = {"stream": stream, "card": card, "form": form}
    return render(request, "boards/card_close.html", context, status=400 if form.errors else 200)


def _closed_card_page(
    request: HtmxHttpRequest, stream: ValueStream, result: services.MoveResult
) -> HttpResponse:
    """The card page, at its closing panel (where "Undo" is), with the message."""
    card = result.card
    loss = getattr(result.move, "loss", None)
    why = f": {loss.reason.name}" if loss is not None and loss.reason is not None else ""
    messages.success(request, f"{card} marked {card.get_outcome_display().lower()}{why}.")
    url = reverse("boards:card-detail", args=[stream.slug, card.pk])
    return redirect(f"{url}#closing")


@require_POST
def card_reopen(request: HtmxHttpRequest, stream_slug: str, card_id: int) -> HttpResponse:
    """Reopen a won or lost card (or undo a close just made), from the card page or the
    archive; back where it was asked, with the message."""
    stream, card = _card_page(request, stream_slug, card_id)
    form = ReopenForm(request.POST)
    valid = form.is_valid()
    back = _our_page(request, form.cleaned_data.get("next", "")) or reverse(
        "boards:card-detail", args=[stream.slug, card.pk]
    )
    refuse_back_to(request, back)
    if not valid:
        raise InvalidInput()
    try:
        result = services.card_reopen(
            card_id=card.pk,
            actor=request_actor(request),
            expected_version=form.cleaned_data["version"],
            wip_override_reason=form.cleaned_data["override_reason"],
            undo=form.cleaned_data["undo"],
        )
    except WipLimitReached as error:
        return _reopen_refused(request, stream, card, form, error, back)
    messages.success(request, _reopened(stream, result, undo=form.cleaned_data["undo"], back=back))
    return redirect(back)


def _reopened(stream: ValueStream, result: services.MoveResult, *, undo: bool, back: str) -> str:
    """What a reopen says: where the card is now; from the archive (which it has left),
    with a link to it."""
    card = result.card
    message = f"{'Undone' if undo else 'Reopened'}: {card} is open again, in {card.column}."
    if result.move is not None and result.move.wip_override_reason:
        message += " It went over the WIP limit; the reason is logged."
    elif undo:
        (column,) = selectors.board_columns(
            stream=stream, column_ids=[card.column_id], with_cards=False
        )
        limit = column.column.wip_limit
        if limit is not None and column.open_count > limit:
            message += (
                f" {column.column.name} now holds {column.open_count}/{limit}, over its WIP"
                " limit: an undo puts a card back regardless."
            )
    card_url = reverse("boards:card-detail", args=[stream.slug, card.pk])
    if back != card_url:
        return format_html('{} <a href="{}">Open its card</a>', message, card_url)
    return message


def _reopen_refused(
    request: HtmxHttpRequest,
    stream: ValueStream,
    card: Card,
    form: ReopenForm,
    error: WipLimitReached,
    back: str,
) -> HttpResponse:
    """A reopen into a full column: the card's reopen page says so, and offers whoever
    steers the stream to reopen it anyway with a reason (as the board's refusal does)."""
    context = {
        "stream": stream,
        "card": card,
        "reopen_form": form,
        "wip_refusal": error,
        "back_url": back,
        "back_name": (
            "the archive"
            if back.startswith(reverse("boards:archive", args=[stream.slug]))
            else card.display_name
        ),
    }
    return render(request, "boards/card_close.html", context, status=error.http_status)


def _our_page(request: HtmxHttpRequest, url: str) -> str:
    """``url`` if it is a page of this site (the page a form came from), else ""."""
    if url.startswith("/") and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""
