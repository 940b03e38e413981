"""Cards through the API: a new prospect (a card, or a place in the intake queue), the
list and one card, its history, and the moves (within a cycle, handoff, close, reopen),
each through the board's services, so WIP limits, control points and versions hold as
on the board."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api.authentication import ANY_SCOPE, token_actor
from api.pagination import CardCursorPagination
from api.selectors import (
    CardQuery,
    cards_listed,
    cards_of_stream,
    control_point_in_stream,
    lost_reason_in_stream,
    prospect_channel,
    prospect_cycle,
)
from api.serializers import (
    CardFilterSerializer,
    CardMoveSerializer,
    CardSerializer,
    CloseSerializer,
    HandoffSerializer,
    HistoryQuerySerializer,
    MoveResultSerializer,
    ProspectCreateSerializer,
    ProspectQueuedSerializer,
    ReopenSerializer,
    TimelineSerializer,
)
from api.views.common import (
    ANY_SCOPE_WRITE_ERRORS,
    CARD_ID,
    READ_ERRORS,
    STREAM_ID,
    WRITE_ERRORS,
    ApiView,
    responses,
    valid,
)
from boards import selectors, services
from boards.errors import CardNotFound
from boards.models import Card, Outcome
from boards.services import MoveResult
from intake.services import IntakeResult, prospect_intake
from pdca.models import ControlPoint
from vsm.errors import DomainError
from vsm.models import ValueStream

CARDS = "Cards"


def _card_response(stream: ValueStream, card_id: int, *, status_code: int = 200) -> Response:
    card = selectors.card_in_stream(stream=stream, card_id=card_id)
    context = {"stream_slug": stream.slug}
    return Response(CardSerializer(card, context=context).data, status=status_code)


def _move_response(stream: ValueStream, result: MoveResult) -> Response:
    """The card as it now is (read afresh: its column and cycle by name), and the move."""
    card = selectors.card_in_stream(stream=stream, card_id=result.card.pk)
    answer = {"card": card, "move": result.move, "unchanged": result.unchanged}
    return Response(MoveResultSerializer(answer, context={"stream_slug": stream.slug}).data)


_PROSPECT_ANSWERS = {
    201: OpenApiResponse(CardSerializer, description="The card, in the cycle's first column."),
    202: OpenApiResponse(
        ProspectQueuedSerializer,
        description="Accepted into the intake queue: the first column is at its WIP limit, "
        "or prospects queued before wait for it. It becomes a card by itself, in turn.",
    ),
}


class ProspectCreate(ApiView):
    token_scopes = ANY_SCOPE

    @extend_schema(
        tags=[CARDS],
        operation_id="prospect_create",
        summary="Create a prospect (a web form's entry)",
        description=(
            "The card enters the first column of the cycle (by default the stream's first "
            "cycle), within its WIP limit: `201` with the card. When that column is full, "
            "or other prospects already wait for it, the prospect waits in the intake "
            "queue, behind them: `202` with its place in line. A prospect the board would "
            "refuse is refused at once, never queued. The channel is named by id or by name."
        ),
        parameters=[STREAM_ID],
        request=ProspectCreateSerializer,
        responses=responses(_PROSPECT_ANSWERS, ANY_SCOPE_WRITE_ERRORS),
    )
    def post(self, request: Request, stream_id: int) -> Response:
        stream = self.stream(request, stream_id)
        data = valid(ProspectCreateSerializer, request.data)
        channel = prospect_channel(
            stream=stream, channel_id=data["channel_id"], channel_name=data["channel_name"]
        )
        try:
            result = prospect_intake(
                cycle_id=prospect_cycle(stream=stream, cycle_id=data["cycle_id"]),
                stream_id=stream.pk,
                actor=token_actor(request),
                person_name=data["person_name"],
                company=data["company"],
                email=data["email"],
                channel_id=channel.pk if channel is not None else None,
                owner_id=None,
                estimated_value=data["estimated_value"],
                notes=data["notes"],
            )
        except DomainError as error:
            _name_the_channel_as_asked(error, data)
            raise
        if result.card is None:
            return _queued_response(result)
        response = _card_response(stream, result.card.pk, status_code=status.HTTP_201_CREATED)
        response["Location"] = reverse("api:card-detail", args=[stream.pk, result.card.pk])
        return response


def _queued_response(result: IntakeResult) -> Response:
    """202: the prospect's place in the intake queue."""
    item = result.item
    assert item is not None, "a prospect_intake result holds a card or an item"
    waiting = {"id": item.pk, "queued_at": item.queued_at, "position": result.position}
    answer = {"status": "queued", "intake_item": waiting}
    return Response(ProspectQueuedSerializer(answer).data, status=status.HTTP_202_ACCEPTED)


def _name_the_channel_as_asked(error: DomainError, data: dict[str, Any]) -> None:
    """A refusal of the channel (inactive, another stream's) names the input the request
    named it by, ``channel_id`` or ``channel_name``, not the board's field."""
    if error.field == "channel":
        error.field = "channel_id" if data["channel_id"] is not None else "channel_name"


class CardList(ApiView):
    pagination_class = CardCursorPagination

    @extend_schema(
        tags=[CARDS],
        operation_id="cards_list",
        summary="List cards",
        description="The stream's cards, filtered as on the board, by id, a page at a time.",
        parameters=[STREAM_ID, CardFilterSerializer],
        responses=responses({200: CardSerializer(many=True)}, READ_ERRORS),
    )
    def get(self, request: Request, stream_id: int) -> Response:
        stream = self.stream(request, stream_id)
        filters = valid(CardFilterSerializer, request.query_params)
        channel_id = filters.get("channel")
        query = CardQuery(
            stream=stream,
            filters=selectors.BoardFilters(
                channel_id=channel_id or None,
                owner_id=filters.get("owner"),
                text=filters.get("search", "").strip(),
                blocked_only=filters["blocked"],
                column_id=filters.get("column"),
            ),
            cycle_id=filters.get("cycle"),
            outcome=filters.get("outcome", ""),
            without_channel=channel_id == 0,
        )
        paginator = CardCursorPagination()
        page = paginator.paginate_queryset(cards_listed(query), request, view=self)
        data = CardSerializer(page, many=True, context={"stream_slug": stream.slug}).data
        return paginator.get_paginated_response(data)


class CardDetail(ApiView):
    @extend_schema(
        tags=[CARDS],
        operation_id="card_get",
        summary="Read a card",
        description=(
            "The card as it is now: its column and cycle, owner, channel, outcome and its "
            "`version`, which a move, handoff, close or reopen names."
        ),
        parameters=[STREAM_ID, CARD_ID],
        responses=responses({200: CardSerializer}, READ_ERRORS),
    )
    def get(self, request: Request, stream_id: int, card_id: int) -> Response:
        return _card_response(self.stream(request, stream_id), card_id)


class CardHistory(ApiView):
    @extend_schema(
        tags=[CARDS],
        operation_id="card_history",
        summary="Read a card's history",
        description="Its moves and activity, newest first, a page at a time.",
        parameters=[STREAM_ID, CARD_ID, HistoryQuerySerializer],
        responses=responses({200: TimelineSerializer}, READ_ERRORS),
    )
    def get(self, request: Request, stream_id: int, card_id: int) -> Response:
        stream = self.stream(request, stream_id)
        card = selectors.card_in_stream(stream=stream, card_id=card_id)
        older = valid(HistoryQuerySerializer, request.query_params).get("older")
        timeline = selectors.card_timeline(card=card, before=older)
        answer = {
            "entries": timeline.entries,
            "older": str(timeline.older) if timeline.older is not None else None,
        }
        return Response(TimelineSerializer(answer).data)


_MOVED = {200: OpenApiResponse(MoveResultSerializer, description="The card and its move.")}
_NEIGHBOURS = ("after_card_id", "before_card_id")


def _neighbours_check(stream: ValueStream, card: Card, data: dict[str, Any]) -> None:
    """The neighbours a move names are other cards of the stream. The board answers a
    neighbour it does not find "stale" (it moved meanwhile); for an id that never named
    a card of the stream, retrying would not help.

    Raises: ValidationError (the card itself), CardNotFound naming the field (missing,
    or another stream's: alike).
    """
    named = {field: data[field] for field in _NEIGHBOURS if data[field] is not None}
    if not named:
        return
    for field, card_id in named.items():
        if card_id == card.pk:
            raise ValidationError({field: ["A card is not its own neighbour."]})
    missing = set(named.values()) - cards_of_stream(stream=stream, card_ids=named.values())
    for field, card_id in named.items():
        if card_id in missing:
            raise CardNotFound(
                f"No such card in this value stream: {field} {card_id}.",
                data={field: card_id},
                field=field,
            )


def _handoff_from_cards_cycle_check(card: Card, control_point: ControlPoint, version: int) -> None:
    """At the version the caller names, the card is in the cycle the control point leads
    from. The board answers a mismatch "stale" (the card moved on meanwhile); when the
    caller's version is the card's, the control point was the wrong one. A closed card,
    or another version, is the service's to refuse.

    Raises: ValidationError (on ``control_point_id``).
    """
    if version != card.version or not card.is_open:
        return
    if card.column.cycle_id != control_point.from_cycle_id:
        raise ValidationError(
            {
                "control_point_id": [
                    f"This control point leads from {control_point.from_cycle.name}; the "
                    f"card is in {card.column.cycle.name}."
                ]
            }
        )


class CardMove(ApiView):
    @extend_schema(
        tags=[CARDS],
        operation_id="card_move",
        summary="Move a card within its cycle",
        description=(
            "To another column of the card's cycle (another cycle: a handoff), within the "
            "target's WIP limit, naming the card's version. Between two cards of the "
            "target column when they are named; else at its end."
        ),
        parameters=[STREAM_ID, CARD_ID],
        request=CardMoveSerializer,
        responses=responses(_MOVED, WRITE_ERRORS),
    )
    def post(self, request: Request, stream_id: int, card_id: int) -> Response:
        stream = self.stream(request, stream_id)
        card = selectors.card_in_stream(stream=stream, card_id=card_id)
        data = valid(CardMoveSerializer, request.data)
        _neighbours_check(stream, card, data)
        result = services.card_move(
            card_id=card.pk,
            to_column_id=data["to_column_id"],
            actor=token_actor(request),
            expected_version=data["version"],
            after_card_id=data["after_card_id"],
            before_card_id=data["before_card_id"],
            expected_column_id=card.column_id,
        )
        return _move_response(stream, result)


class CardHandoff(ApiView):
    @extend_schema(
        tags=[CARDS],
        operation_id="card_handoff",
        summary="Hand a card off through a control point",
        description=(
            "Into the first column of the next cycle, with the criteria met (every "
            "required one), within that column's WIP limit; the card then belongs to the "
            "receiving team."
        ),
        parameters=[STREAM_ID, CARD_ID],
        request=HandoffSerializer,
        responses=responses(_MOVED, WRITE_ERRORS),
    )
    def post(self, request: Request, stream_id: int, card_id: int) -> Response:
        stream = self.stream(request, stream_id)
        card = selectors.card_in_stream(stream=stream, card_id=card_id)
        data = valid(HandoffSerializer, request.data)
        control_point = control_point_in_stream(
            stream=stream, control_point_id=data["control_point_id"]
        )
        _handoff_from_cards_cycle_check(card, control_point, data["version"])
        result = services.handoff_pass(
            card_id=card.pk,
            control_point_id=control_point.pk,
            criteria_met_ids=data["criteria_met_ids"],
            actor=token_actor(request),
            expected_version=data["version"],
        )
        return _move_response(stream, result)


class CardClose(ApiView):
    @extend_schema(
        tags=[CARDS],
        operation_id="card_close",
        summary="Close a card as won or lost",
        description=(
            "An open card, naming its version: it leaves the flow (and its column's WIP "
            "count) until it is reopened. A lost card says why: a lost reason of the "
            "stream, a note, or both (one of them once the stream keeps a list of reasons)."
        ),
        parameters=[STREAM_ID, CARD_ID],
        request=CloseSerializer,
        responses=responses(_MOVED, WRITE_ERRORS),
    )
    def post(self, request: Request, stream_id: int, card_id: int) -> Response:
        stream = self.stream(request, stream_id)
        card = selectors.card_in_stream(stream=stream, card_id=card_id)
        data = valid(CloseSerializer, request.data)
        if data["lost_reason_id"] is not None:
            lost_reason_in_stream(stream=stream, lost_reason_id=data["lost_reason_id"])
        result = services.card_close(
            card_id=card.pk,
            outcome=Outcome(data["outcome"]),
            actor=token_actor(request),
            expected_version=data["version"],
            lost_reason_id=data["lost_reason_id"],
            lost_note=data["lost_note"],
        )
        return _move_response(stream, result)


class CardReopen(ApiView):
    @extend_schema(
        tags=[CARDS],
        operation_id="card_reopen",
        summary="Reopen a won or lost card",
        description="At the end of the column it closed in, within its WIP limit.",
        parameters=[STREAM_ID, CARD_ID],
        request=ReopenSerializer,
        responses=responses(_MOVED, WRITE_ERRORS),
    )
    def post(self, request: Request, stream_id: int, card_id: int) -> Response:
        stream = self.stream(request, stream_id)
        card = selectors.card_in_stream(stream=stream, card_id=card_id)
        data = valid(ReopenSerializer, request.data)
        result = services.card_reopen(
            card_id=card.pk, actor=token_actor(request), expected_version=data["version"]
        )
        return _move_response(stream, result)
