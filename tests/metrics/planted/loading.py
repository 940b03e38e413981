"""Write a planted simulation as a real stream: Card and CardMove rows (COPY on
PostgreSQL, ``bulk_create`` elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.backends.utils import CursorWrapper

from boards.models import Card, CardMove, Column, MoveKind, Outcome
from boards.services import POSITION_GAP, value_stream_create
from tests.metrics.planted.simulation import (
    BATCH_SIZE,
    CHANNELS,
    COLUMN_COUNT,
    POSITION_NAMES,
    SIM_START,
    Simulation,
)
from tests.support import TEST_SYSTEM
from vsm.models import Channel, ValueStream


def _moved_at(at_us: int) -> datetime:
    return SIM_START + timedelta(microseconds=at_us)


def create_planted_stream(
    simulation: Simulation, *, manager: AbstractBaseUser, name: str = ""
) -> tuple[ValueStream, list[int]]:
    """A real stream holding a simulation: the default board with the plan's WIP limits,
    its channels, and its cards and move log. Returns the stream and its column ids in
    flow order (position j -> column id)."""
    plan = simulation.plan
    stream = value_stream_create(
        actor=TEST_SYSTEM,
        name=name or f"Planted {plan.seed}",
        customer_market=f"Planted constraint at {POSITION_NAMES[plan.constraint]}",
        manager=manager,
    )
    column_ids = list(
        Column.objects.filter(cycle__value_stream=stream)
        .order_by("cycle__order", "order")
        .values_list("pk", flat=True)
    )
    assert len(column_ids) == COLUMN_COUNT
    for column_id, column_plan in zip(column_ids, plan.columns, strict=True):
        Column.objects.filter(pk=column_id).update(wip_limit=column_plan.wip_limit)
    channel_ids = [
        Channel.objects.create(value_stream=stream, name=channel_name, kind=kind).pk
        for channel_name, kind in CHANNELS
    ]
    load_simulation(stream, simulation, column_ids=column_ids, channel_ids=channel_ids)
    return stream, column_ids


def _positions(simulation: Simulation) -> list[int]:
    """Gapped positions, unique among the open cards of a column, in entry order."""
    positions = [0] * len(simulation.cards)
    by_column: dict[int, list[int]] = {}
    for index, card in enumerate(simulation.cards):
        if card.outcome == Outcome.OPEN:
            by_column.setdefault(card.column, []).append(index)
    for indexes in by_column.values():
        indexes.sort(key=lambda i: (simulation.cards[i].column_entered_us, i))
        for rank, index in enumerate(indexes, start=1):
            positions[index] = rank * POSITION_GAP
    return positions


def load_simulation(
    stream: ValueStream, simulation: Simulation, *, column_ids: list[int], channel_ids: list[int]
) -> None:
    """Write the simulation's cards and moves into a stream: COPY on PostgreSQL,
    bulk_create (batches of BATCH_SIZE) elsewhere. Move ids follow moved_at; recorded_at
    is moved_at (the history was recorded as it happened)."""
    rows = _CardRows(simulation, column_ids, channel_ids)
    if connection.vendor == "postgresql":
        _copy(stream, simulation, rows, column_ids)
    else:
        _bulk_create(stream, simulation, rows, column_ids)


class _CardRows:
    """The card rows of a simulation, as the loaders write them."""

    def __init__(
        self, simulation: Simulation, column_ids: list[int], channel_ids: list[int]
    ) -> None:
        self.cards = simulation.cards
        self.column = [column_ids[card.column] for card in self.cards]
        self.position = _positions(simulation)
        self.channel = [
            channel_ids[card.channel] if card.channel is not None else None for card in self.cards
        ]

    @staticmethod
    def person_name(index: int) -> str:
        return f"Prospect {index + 1}"

    @staticmethod
    def company(index: int) -> str:
        return f"Company {index % 500 + 1}"


def _bulk_create(
    stream: ValueStream, simulation: Simulation, rows: _CardRows, column_ids: list[int]
) -> None:
    cards = Card.objects.bulk_create(
        (
            Card(
                value_stream=stream,
                column_id=rows.column[index],
                position=rows.position[index],
                person_name=rows.person_name(index),
                company=rows.company(index),
                channel_id=rows.channel[index],
                estimated_value=card.estimated_value,
                outcome=card.outcome,
                created_at=_moved_at(card.created_us),
                updated_at=_moved_at(card.updated_us),
                column_entered_at=_moved_at(card.column_entered_us),
                closed_at=_moved_at(card.closed_us) if card.closed_us is not None else None,
                version=card.events,
            )
            for index, card in enumerate(rows.cards)
        ),
        batch_size=BATCH_SIZE,
    )
    CardMove.objects.bulk_create(
        (
            CardMove(
                value_stream=stream,
                card_id=cards[event.card].pk,
                from_column_id=(
                    column_ids[event.from_column] if event.from_column is not None else None
                ),
                to_column_id=column_ids[event.to_column],
                moved_at=_moved_at(event.at_us),
                kind=MoveKind(event.kind),
                channel_id=rows.channel[event.card],
                estimated_value=rows.cards[event.card].estimated_value,
                recorded_at=_moved_at(event.at_us),
            )
            for event in simulation.events
        ),
        batch_size=BATCH_SIZE,
    )


@contextmanager
def _without_row_triggers(cursor: CursorWrapper) -> Iterator[None]:
    """No foreign-key trigger events for the rows COPY writes: Django's foreign keys are
    deferred, so each row would queue its checks until the test's teardown runs them all
    (about 20 s for the standard set). Every reference is valid by construction: the
    stream, column, channel and card ids are read back from the database."""
    cursor.execute("SHOW session_replication_role")
    previous = cursor.fetchone()[0]
    cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        cursor.execute("SELECT set_config('session_replication_role', %s, false)", [previous])


def _copy(
    stream: ValueStream, simulation: Simulation, rows: _CardRows, column_ids: list[int]
) -> None:
    null = r"\N"

    def stamp(at_us: int | None) -> str:
        return _moved_at(at_us).isoformat() if at_us is not None else null

    card_fields = (
        "value_stream_id, column_id, position, person_name, company, email, channel_id, "
        "estimated_value, notes, is_blocked, blocked_reason, outcome, created_at, updated_at, "
        "column_entered_at, closed_at, version"
    )
    move_fields = (
        "value_stream_id, card_id, from_column_id, to_column_id, moved_at, kind, "
        "channel_id, estimated_value, recorded_at"
    )
    stream_id = str(stream.pk)
    channels = [str(channel) if channel is not None else null for channel in rows.channel]
    with connection.cursor() as cursor, _without_row_triggers(cursor):
        with cursor.copy(f"COPY boards_card ({card_fields}) FROM STDIN") as copy:
            copy.write(
                "".join(
                    f"{stream_id}\t{rows.column[index]}\t{rows.position[index]}\t"
                    f"{rows.person_name(index)}\t{rows.company(index)}\t\t{channels[index]}\t"
                    f"{card.estimated_value}\t\tf\t\t{card.outcome}\t{stamp(card.created_us)}\t"
                    f"{stamp(card.updated_us)}\t{stamp(card.column_entered_us)}\t"
                    f"{stamp(card.closed_us)}\t{card.events}\n"
                    for index, card in enumerate(rows.cards)
                )
            )
        # COPY takes ids from the sequence row by row: the stream's cards, in id order,
        # are the simulation's cards in order (and its moves, in id order, its events).
        cursor.execute(
            "SELECT id FROM boards_card WHERE value_stream_id = %s ORDER BY id", [stream.pk]
        )
        card_ids = [row[0] for row in cursor.fetchall()]
        assert len(card_ids) == len(rows.cards)
        values = [str(card.estimated_value) for card in rows.cards]
        column_text = [str(column_id) for column_id in column_ids]
        with cursor.copy(f"COPY boards_cardmove ({move_fields}) FROM STDIN") as copy:
            lines = []
            for event in simulation.events:
                at = stamp(event.at_us)
                frm = column_text[event.from_column] if event.from_column is not None else null
                lines.append(
                    f"{stream_id}\t{card_ids[event.card]}\t{frm}\t"
                    f"{column_text[event.to_column]}\t{at}\t{event.kind}\t"
                    f"{channels[event.card]}\t{values[event.card]}\t{at}\n"
                )
                if len(lines) >= 20_000:
                    copy.write("".join(lines))
                    lines.clear()
            copy.write("".join(lines))
