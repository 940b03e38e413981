"""The dashboard's "Lost reasons": why the deals of the window were lost, per column (where
the card was when it was lost) and per channel (the one it had then), from the lost
moves and the losses recorded beside them (boards.CardLoss)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db.models import Case, Count, F, IntegerField, Value, When

from boards.models import CardMove, MoveKind, Outcome
from metrics.selectors.query import MetricsQuery

# What a lost card without a reason of the stream's list counts as.
NOTE_ONLY = "Other (a note only)"
NOT_RECORDED = "Not recorded"
NO_CHANNEL = "No channel"


@dataclass(frozen=True)
class Place:
    """A column or a channel lost cards were counted in, in display order."""

    key: int | None
    name: str


@dataclass(frozen=True)
class LostReasons:
    """The lost cards of a query's window, counted once each by their final loss.

    ``reasons``: the reasons given, in the stream's order, then NOTE_ONLY and
    NOT_RECORDED (each only if counted). ``columns``: in flow order; ``channels``: by
    name, NO_CHANNEL last; each only where a card was lost. ``by_column`` and
    ``by_channel``: lost cards per (reason, column id) and (reason, channel id)."""

    reasons: list[str]
    columns: list[Place]
    channels: list[Place]
    by_column: Counter[tuple[str, int | None]]
    by_channel: Counter[tuple[str, int | None]]

    @property
    def total(self) -> int:
        return sum(self.by_column.values())


# How a loss was recorded: a reason of the list, a note only, or nothing.
_REASON, _NOTE_ONLY, _NOT_RECORDED = 2, 1, 0


def lost_reasons(query: MetricsQuery) -> LostReasons:
    """The cards of ``query.stream`` whose final state is lost and whose final loss falls
    in the window (its first day to ``query.now``), by reason, column and channel; with
    ``query.cycle_id`` those lost in that cycle, with ``query.channel_key`` those of that
    channel (0: none). One query, whatever the number of cards."""
    moves = CardMove.objects.filter(
        value_stream=query.stream,
        kind=MoveKind.LOST,
        moved_at__gte=query.start_moment(),
        moved_at__lte=query.now,
        # Counted once, by the final state: lost now, and this is the loss that closed it.
        card__outcome=Outcome.LOST,
        card__closed_at=F("moved_at"),
    )
    if query.cycle_id is not None:
        moves = moves.filter(to_column__cycle_id=query.cycle_id)
    if query.channel_key is not None:
        if query.channel_key:
            moves = moves.filter(channel_id=query.channel_key)
        else:
            moves = moves.filter(channel__isnull=True)
    rows = (
        moves.annotate(
            recorded=Case(
                When(loss__isnull=True, then=Value(_NOT_RECORDED)),
                When(loss__reason__isnull=True, then=Value(_NOTE_ONLY)),
                default=Value(_REASON),
                output_field=IntegerField(),
            )
        )
        .values(
            "recorded",
            "loss__reason__name",
            "loss__reason__order",
            "to_column_id",
            "to_column__name",
            "to_column__order",
            "to_column__cycle__name",
            "to_column__cycle__order",
            "channel_id",
            "channel__name",
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    reasons: dict[str, tuple[int, int, str]] = {}
    columns: dict[int, tuple[tuple[int, int], str]] = {}
    channels: dict[int | None, str] = {}
    by_column: Counter[tuple[str, int | None]] = Counter()
    by_channel: Counter[tuple[str, int | None]] = Counter()
    for row in rows:
        if row["recorded"] == _REASON:
            reason = row["loss__reason__name"]
            reasons[reason] = (0, row["loss__reason__order"], reason)
        else:
            reason = NOTE_ONLY if row["recorded"] == _NOTE_ONLY else NOT_RECORDED
            reasons[reason] = (1 + (row["recorded"] == _NOT_RECORDED), 0, reason)
        column_id = row["to_column_id"]
        columns[column_id] = (
            (row["to_column__cycle__order"], row["to_column__order"]),
            f"{row['to_column__cycle__name']} / {row['to_column__name']}",
        )
        channels[row["channel_id"]] = row["channel__name"] or NO_CHANNEL
        by_column[(reason, column_id)] += row["n"]
        by_channel[(reason, row["channel_id"])] += row["n"]
    return LostReasons(
        reasons=sorted(reasons, key=reasons.__getitem__),
        columns=[
            Place(column_id, name)
            for column_id, (_, name) in sorted(columns.items(), key=lambda item: item[1][0])
        ],
        channels=[
            Place(channel_id, name)
            for channel_id, name in sorted(
                channels.items(), key=lambda item: (item[0] is None, item[1].casefold())
            )
        ],
        by_column=by_column,
        by_channel=by_channel,
    )
