"""A board driven by hand-written events through the board services, for the metrics
tests: named cards, columns by (cycle, name)."""

from __future__ import annotations

from boards.models import Card, Column, Outcome
from boards.services import (
    card_close,
    card_create,
    card_move,
    card_reopen,
    card_update,
    handoff_pass,
)
from pdca.models import ControlPoint
from tests.support import COLLABORATION, as_actor
from vsm.models import Channel, ValueStream


class Board:
    """The stream's columns, control points and named cards, acting via the services."""

    def __init__(self, stream: ValueStream, actor) -> None:
        self.stream = stream
        self.actor = actor
        self.cards: dict[str, int] = {}
        self.channels: tuple[Channel, ...] = ()
        self.columns = {
            (column.cycle.name, column.name): column
            for column in Column.objects.filter(cycle__value_stream=stream).select_related("cycle")
        }

    def column(self, cycle: str, name: str) -> Column:
        return self.columns[(cycle, name)]

    def enter(self, key: str, channel: Channel, value: int, when, cycle: str = COLLABORATION):
        result = card_create(
            cycle_id=self.column(cycle, "Data").cycle_id,
            actor=as_actor(self.actor),
            person_name=f"Prospect {key}",
            channel_id=channel.pk if channel else None,
            estimated_value=value,
            at=when,
        )
        self.cards[key] = result.card.pk

    def move(self, key: str, column_name: str, when) -> None:
        card = Card.objects.select_related("column__cycle").get(pk=self.cards[key])
        target = self.column(card.column.cycle.name, column_name)
        result = card_move(
            card_id=card.pk, to_column_id=target.pk, actor=as_actor(self.actor), at=when
        )
        assert result.move is not None, "every scripted move changes column"

    def handoff(self, key: str, when) -> None:
        card = Card.objects.select_related("column").get(pk=self.cards[key])
        control_point = ControlPoint.objects.get(from_cycle_id=card.column.cycle_id)
        handoff_pass(
            card_id=card.pk,
            control_point_id=control_point.pk,
            criteria_met_ids=control_point.criteria.values_list("pk", flat=True),
            actor=as_actor(self.actor),
            at=when,
        )

    def close(self, key: str, outcome: Outcome, when) -> None:
        card_close(card_id=self.cards[key], outcome=outcome, actor=as_actor(self.actor), at=when)

    def reopen(self, key: str, when) -> None:
        card_reopen(card_id=self.cards[key], actor=as_actor(self.actor), at=when)

    def edit(self, key: str, *, channel: Channel | None = None, value=None, when) -> None:
        card = Card.objects.get(pk=self.cards[key])
        card_update(
            card_id=card.pk,
            actor=as_actor(self.actor),
            person_name=card.person_name,
            company=card.company,
            email=card.email,
            channel_id=channel.pk if channel else card.channel_id,
            owner_id=card.owner_id,
            estimated_value=card.estimated_value if value is None else value,
            notes=card.notes,
            at=when,
        )
