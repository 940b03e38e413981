"""Every write on the board.

One write path per fact: every way a card changes column (create, drag, keyboard,
handoff, won/lost, reopen, admin) ends in ``_place_card``, which holds the WIP rule,
the position rule and the move log, under the column locks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import OperationalError, connection, transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import timezone
from django.utils.text import slugify

from boards.errors import (
    BoardBusy,
    BoardError,
    ControlPointRequired,
    CriteriaNotMet,
    InvalidMove,
    PermissionRefused,
    StaleBoard,
    WipLimitReached,
)
from boards.models import Card, CardMove, Column, Handoff, KnowledgeLevel, MoveKind, Outcome
from metrics.tasks import enqueue_recompute
from pdca.models import ControlPoint, Criterion, Cycle
from vsm.models import Channel, Membership, Role, Team, ValueStream
from vsm.selectors import user_manages_stream

# Room for 20 drops into the same gap before the column is renumbered (positions are
# 64-bit: a column could take 2**43 cards appended at its end).
POSITION_GAP = 2**20

DEFAULT_CYCLES: Sequence[str] = ("Collaboration", "Sales/Buying", "Repeat/Upsell")
DEFAULT_COLUMNS: Sequence[tuple[str, str, int | None]] = (
    ("Data", KnowledgeLevel.DATA, None),
    ("Information", KnowledgeLevel.INFORMATION, 15),
    ("Knowledge", KnowledgeLevel.KNOWLEDGE, 10),
    ("Wisdom", KnowledgeLevel.WISDOM, 5),
)
DEFAULT_CRITERIA: dict[tuple[str, str], Sequence[tuple[str, bool]]] = {
    ("Collaboration", "Sales/Buying"): (
        ("Customer's problem understood", True),
        ("Our solution matches the problem", True),
        ("Decision maker identified", False),
    ),
    ("Sales/Buying", "Repeat/Upsell"): (
        ("First purchase made", True),
        ("Onboarding owner named", True),
        ("Success criteria agreed with the customer", False),
    ),
}


@dataclass(frozen=True)
class MoveResult:
    card: Card
    move: CardMove | None
    # Columns whose content changed, so a client can re-render just those.
    column_ids: frozenset[int] = field(default_factory=frozenset)
    # The same columns as read under their lock (with cycle and stream): fresh, so an
    # answer can render their heads without reading them again.
    columns: tuple[Column, ...] = ()
    # Open cards per column after the change, when the service counted them under the
    # locks (card_move): the heads then need no query at all.
    open_counts: Mapping[int, int] | None = None


def value_stream_create(
    *,
    name: str,
    customer_market: str,
    manager: AbstractBaseUser,
    slug: str = "",
    description: str = "",
    team_name: str = "",
) -> ValueStream:
    """Make a stream with its default team, cycles, columns and control points.

    Side effects: the manager joins the default team as value stream manager.
    """
    with transaction.atomic():
        stream = ValueStream.objects.create(
            name=name,
            slug=slug or slugify(name)[:120],
            customer_market=customer_market,
            description=description,
            manager=manager,
        )
        team = Team.objects.create(value_stream=stream, name=team_name or f"{name} team")
        Membership.objects.create(user=manager, team=team, role=Role.VALUE_STREAM_MANAGER)
        cycles = [
            Cycle.objects.create(
                value_stream=stream, name=cycle_name, order=order, owning_team=team
            )
            for order, cycle_name in enumerate(DEFAULT_CYCLES, start=1)
        ]
        Column.objects.bulk_create(
            Column(
                cycle=cycle,
                name=column_name,
                knowledge_level=level,
                order=order,
                wip_limit=wip_limit,
            )
            for cycle in cycles
            for order, (column_name, level, wip_limit) in enumerate(DEFAULT_COLUMNS, start=1)
        )
        for from_cycle, to_cycle in zip(cycles, cycles[1:], strict=False):
            control_point = ControlPoint.objects.create(
                from_cycle=from_cycle, to_cycle=to_cycle, receiving_team=team
            )
            criteria = DEFAULT_CRITERIA.get((from_cycle.name, to_cycle.name), ())
            Criterion.objects.bulk_create(
                Criterion(control_point=control_point, text=text, required=required, order=order)
                for order, (text, required) in enumerate(criteria, start=1)
            )
    return stream


# Bounds on a move's transaction, so that metrics can tell when no older move can
# still be in flight (metrics.services.SETTLE_SECONDS must stay above their sum).
_MOVE_TRANSACTION_LIMITS = (
    "SET LOCAL lock_timeout = '3s'; SET LOCAL statement_timeout = '5s'; "
    "SET LOCAL idle_in_transaction_session_timeout = '10s'"
)


# lock_not_available, query_canceled: a bound above was hit while others held the rows.
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})


@contextmanager
def _move_transaction() -> Iterator[None]:
    """A move's transaction; hitting its time bounds is a refusal the user can retry."""
    try:
        with transaction.atomic():
            yield
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) in _BUSY_SQLSTATES:
            raise BoardBusy() from error
        raise


def _bound_transaction() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_MOVE_TRANSACTION_LIMITS)


def _lock_columns(column_ids: Iterable[int]) -> dict[int, Column]:
    """Lock column rows in ascending pk order, so two moves A->B and B->A cannot deadlock.

    ``no_key=True``: a plain FOR UPDATE would conflict with the FOR KEY SHARE that
    concurrent inserts referencing the column (CardMove) take, and deadlock under load.
    """
    _bound_transaction()
    ids = sorted(set(column_ids))
    # of=("self",): lock the column rows only, not the joined cycle and stream rows.
    locked = (
        Column.objects.select_for_update(no_key=True, of=("self",))
        .select_related("cycle__value_stream")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    columns = {column.pk: column for column in locked}
    if len(columns) != len(ids):
        raise InvalidMove("That column no longer exists.")
    return columns


def _open_cards(column: Column):
    return Card.objects.filter(column=column, outcome=Outcome.OPEN)


# Plain SQL: the ORM cannot update from a window function, and the CASE with one
# branch per card it would take instead cost 130-170 ms of Python at 700 cards.
# UPDATE ... FROM needs SQLite 3.33 or later.
_SHIFT_BELOW_ZERO_AND_ALL = """
    UPDATE "boards_card" SET "position" = "position" - (
        SELECT MAX("position") - MIN(CASE WHEN "position" < 0 THEN "position" ELSE 0 END) + 1
        FROM "boards_card" WHERE "column_id" = %s AND "outcome" = %s
    )
    WHERE "column_id" = %s AND "outcome" = %s
"""
_SPREAD_BY_RANK = """
    UPDATE "boards_card" SET "position" = ranked."card_rank" * %s
    FROM (
        SELECT "id", ROW_NUMBER() OVER (ORDER BY "position", "id") AS "card_rank"
        FROM "boards_card" WHERE "column_id" = %s AND "outcome" = %s
    ) AS ranked
    WHERE "boards_card"."id" = ranked."id"
"""


def _renumber(column: Column) -> None:
    """Spread the open cards of a locked column to evenly gapped positions, keeping their order.

    Two statements, because the unique (column, position) index is checked row by row:
    first shift every position below both zero and the lowest current one (a uniform
    shift keeps them distinct and clear of every current and every new position), then
    write the new positives from each card's rank by (position, id). Positions can be
    zero or negative (drops on top of the column), so flipping signs would collide with
    a current positive position.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _SHIFT_BELOW_ZERO_AND_ALL, [column.pk, Outcome.OPEN, column.pk, Outcome.OPEN]
        )
        cursor.execute(_SPREAD_BY_RANK, [POSITION_GAP, column.pk, Outcome.OPEN])


def _position_in(
    column: Column,
    *,
    moving_card_id: int | None,
    after_card_id: int | None,
    before_card_id: int | None,
) -> int:
    """The position for a card placed between the neighbours the client names.

    ``after_card_id`` is the card just above the drop point, ``before_card_id`` the one
    just below; neither means the end of the column. The column must be locked.
    Raises: StaleBoard when a named neighbour is no longer open in this column.
    """
    # order_by(): Card.Meta.ordering would join column, cycle and stream into every read.
    others = _open_cards(column).order_by()
    if moving_card_id:
        others = others.exclude(pk=moving_card_id)

    def neighbour_and_next(card_id: int, *, downwards: bool) -> tuple[int, int | None]:
        """A named neighbour's position and the next position past it, in one statement.

        ``downwards``: the next one below the neighbour, else the next one above it;
        None when there is none.
        """
        if downwards:
            beyond = others.filter(position__gt=OuterRef("position")).order_by("position")
        else:
            beyond = others.filter(position__lt=OuterRef("position")).order_by("-position")
        row = (
            others.filter(pk=card_id)
            .annotate(next_position=Subquery(beyond.values("position")[:1]))
            .values_list("position", "next_position")
            .first()
        )
        if row is None:
            raise StaleBoard(
                "The board changed while you were dragging; it now shows the current order."
            )
        return row

    for attempt in range(2):
        if after_card_id is not None:
            lower, upper = neighbour_and_next(after_card_id, downwards=True)
            if upper is None:
                return lower + POSITION_GAP
        elif before_card_id is not None:
            upper, lower = neighbour_and_next(before_card_id, downwards=False)
            if lower is None:
                return upper - POSITION_GAP
        else:
            last = others.aggregate(p=Max("position"))["p"]
            return POSITION_GAP if last is None else last + POSITION_GAP
        if upper - lower >= 2:
            return (lower + upper) // 2
        if attempt == 0:
            _renumber(column)
    raise BoardError("Could not find a free position in the column.")  # pragma: no cover


def _open_counts(column_ids: Iterable[int]) -> dict[int, int]:
    """Open cards per column, in one query. Exact only while the columns are locked."""
    counts = dict.fromkeys(column_ids, 0)
    rows = (
        Card.objects.filter(column_id__in=list(counts), outcome=Outcome.OPEN)
        .order_by()
        .values_list("column_id")
        .annotate(n=Count("id"))
    )
    counts.update(rows)
    return counts


def _check_wip(
    column: Column, *, actor, stream: ValueStream, override_reason: str, count: int | None
) -> str:
    """Enforce the column's WIP limit; return the override reason that was used, if any.

    ``count``: the column's open cards if the caller counted them under the lock.
    Locks: the column must already be locked, so the count cannot change under us.
    Raises: WipLimitReached, PermissionRefused.
    """
    if column.wip_limit is None:
        return ""
    if count is None:
        count = _open_cards(column).count()
    if count < column.wip_limit:
        return ""
    override_reason = override_reason.strip()
    if not override_reason:
        raise WipLimitReached(column_name=column.name, count=count, limit=column.wip_limit)
    if actor is None or not user_manages_stream(actor, stream):
        raise PermissionRefused(
            f"{column.name} is at its WIP limit, {count}/{column.wip_limit}; only the value "
            "stream manager may override it."
        )
    return override_reason


def _check_version(card: Card, expected_version: int | None) -> None:
    if expected_version is not None and card.version != expected_version:
        raise StaleBoard()


def _place_card(
    *,
    card: Card,
    to_column: Column,
    kind: MoveKind,
    actor,
    at: datetime,
    from_column: Column | None,
    after_card_id: int | None = None,
    before_card_id: int | None = None,
    wip_override_reason: str = "",
    check_wip: bool = True,
    to_column_open_count: int | None = None,
) -> CardMove | None:
    """Put a locked card into a locked column and log the event. The one write path.

    ``to_column_open_count``: the target's open cards, if the caller counted them under
    the lock; otherwise the WIP check counts them.
    """
    changes_column = from_column is None or from_column.pk != to_column.pk
    enters_flow = changes_column or kind == MoveKind.REOPEN
    used_override = ""
    if enters_flow and check_wip:
        used_override = _check_wip(
            to_column,
            actor=actor,
            stream=to_column.cycle.value_stream,
            override_reason=wip_override_reason,
            count=to_column_open_count,
        )
    if kind in (MoveKind.WON, MoveKind.LOST):
        position = card.position
    else:
        position = _position_in(
            to_column,
            moving_card_id=card.pk,
            after_card_id=after_card_id,
            before_card_id=before_card_id,
        )
    card.column = to_column
    card.position = position
    card.updated_at = at
    if changes_column:
        card.column_entered_at = at
    card.version = (card.version or 0) + 1 if card.pk else 1
    card.save()
    if not changes_column and kind == MoveKind.MOVE:
        return None  # a reorder inside a column is not a flow event
    enqueue_recompute(card.value_stream_id)
    return CardMove.objects.create(
        value_stream_id=card.value_stream_id,
        card=card,
        from_column=from_column,
        to_column=to_column,
        actor=actor if getattr(actor, "pk", None) else None,
        moved_at=at,
        kind=kind,
        wip_override_reason=used_override,
        channel_id=card.channel_id,
        estimated_value=card.estimated_value,
    )


def _lock_card_and_columns(
    *,
    card_id: int,
    other_column_ids: Iterable[int] = (),
    expected_column_id: int | None = None,
) -> tuple[Card, dict[int, Column]]:
    """Lock the card's current column and the others (ascending pk), then the card.

    The card's column must be known before its lock: the caller names the column it
    saw the card in (``expected_column_id``), or it is read here. Either way, if the
    card is elsewhere once locked, the view that asked for this is stale.
    Raises: InvalidMove (no such card), StaleBoard.
    """
    current_column_id = expected_column_id
    if current_column_id is None:
        # order_by(): Card.Meta.ordering would join column, cycle and stream to sort one row.
        current_column_id = (
            Card.objects.filter(pk=card_id).order_by().values_list("column_id", flat=True).first()
        )
        if current_column_id is None:
            raise InvalidMove("That card no longer exists.")
    columns = _lock_columns([current_column_id, *other_column_ids])
    # The related rows are what the move's answer renders (the card's channel and
    # owner); of=("self",) keeps the lock on the card row alone. The stream came with
    # the columns.
    card = (
        Card.objects.select_for_update(no_key=True, of=("self",))
        .select_related("channel", "owner")
        .filter(pk=card_id)
        .order_by()
        .first()
    )
    if card is None:
        raise InvalidMove("That card no longer exists.")
    if card.column_id != current_column_id:
        raise StaleBoard()
    return card, columns


def card_create(
    *,
    column_id: int,
    actor,
    person_name: str = "",
    company: str = "",
    email: str = "",
    channel_id: int | None = None,
    owner=None,
    estimated_value: Decimal | int = 0,
    notes: str = "",
    wip_override_reason: str = "",
    at: datetime | None = None,
) -> MoveResult:
    """Create a prospect card in the first column of a cycle.

    Locks: the column. Raises: InvalidMove, WipLimitReached, PermissionRefused.
    """
    at = at or timezone.now()
    if not (person_name.strip() or company.strip()):
        raise InvalidMove("A prospect needs a person or a company.")
    with _move_transaction():
        column = _lock_columns([column_id])[column_id]
        stream_id = column.cycle.value_stream_id
        first_column_id = (
            Column.objects.filter(cycle_id=column.cycle_id)
            .order_by("order")
            .values_list("pk", flat=True)
            .first()
        )
        if column.pk != first_column_id:
            raise InvalidMove(f"New prospects enter {column.cycle.name} at its first column.")
        if (
            channel_id is not None
            and not Channel.objects.filter(pk=channel_id, value_stream_id=stream_id).exists()
        ):
            raise InvalidMove("That channel does not belong to this value stream.")
        card = Card(
            value_stream_id=stream_id,
            person_name=person_name.strip(),
            company=company.strip(),
            email=email.strip(),
            channel_id=channel_id,
            owner=owner,
            owning_team_id=column.cycle.owning_team_id,
            estimated_value=estimated_value,
            notes=notes,
            created_at=at,
        )
        card.value_stream = column.cycle.value_stream
        move = _place_card(
            card=card,
            to_column=column,
            kind=MoveKind.ENTER,
            actor=actor,
            at=at,
            from_column=None,
            wip_override_reason=wip_override_reason,
        )
    return MoveResult(card=card, move=move, column_ids=frozenset({column.pk}), columns=(column,))


def card_move(
    *,
    card_id: int,
    to_column_id: int,
    actor,
    expected_version: int | None = None,
    after_card_id: int | None = None,
    before_card_id: int | None = None,
    wip_override_reason: str = "",
    expected_column_id: int | None = None,
    at: datetime | None = None,
) -> MoveResult:
    """Move or reorder an open card within its cycle.

    Crossing into another cycle is a handoff and goes through ``handoff_pass``.
    ``expected_column_id``: the column the caller saw the card in, which saves reading
    it before the lock; like ``expected_version``, a mismatch is StaleBoard.
    Locks: both columns (ascending pk), then the card.
    Raises: StaleBoard, WipLimitReached, PermissionRefused, ControlPointRequired, InvalidMove.
    """
    at = at or timezone.now()
    with _move_transaction():
        card, columns = _lock_card_and_columns(
            card_id=card_id,
            other_column_ids=[to_column_id],
            expected_column_id=expected_column_id,
        )
        _check_version(card, expected_version)
        if not card.is_open:
            raise InvalidMove("This card is closed; reopen it before moving it.")
        from_column = columns[card.column_id]
        to_column = columns[to_column_id]
        if to_column.cycle.value_stream_id != card.value_stream_id:
            raise InvalidMove("That column belongs to another value stream.")
        if to_column.cycle_id != from_column.cycle_id:
            raise ControlPointRequired(
                f"Moving from {from_column.cycle.name} to {to_column.cycle.name} passes a "
                "control point: use its handoff checklist."
            )
        # Both columns in one count: the WIP check needs the target's, the answer both.
        open_counts = _open_counts(columns)
        move = _place_card(
            card=card,
            to_column=to_column,
            kind=MoveKind.MOVE,
            actor=actor,
            at=at,
            from_column=from_column,
            after_card_id=after_card_id,
            before_card_id=before_card_id,
            wip_override_reason=wip_override_reason,
            to_column_open_count=open_counts[to_column.pk],
        )
        if from_column.pk != to_column.pk:
            open_counts[from_column.pk] -= 1
            open_counts[to_column.pk] += 1
    return MoveResult(
        card=card,
        move=move,
        column_ids=frozenset(columns),
        columns=tuple(columns.values()),
        open_counts=open_counts,
    )


def handoff_pass(
    *,
    card_id: int,
    control_point_id: int,
    criteria_met_ids: Iterable[int],
    actor,
    expected_version: int | None = None,
    wip_override_reason: str = "",
    at: datetime | None = None,
) -> MoveResult:
    """Pass a card through a control point into the first column of the next cycle.

    Locks: the card's column and the target column (ascending pk), then the card.
    Raises: CriteriaNotMet, StaleBoard, WipLimitReached, PermissionRefused, InvalidMove.
    Side effects: the card now belongs to the receiving team; a Handoff row records it.
    """
    at = at or timezone.now()
    control_point = (
        ControlPoint.objects.select_related("from_cycle", "to_cycle")
        .filter(pk=control_point_id)
        .first()
    )
    if control_point is None:
        raise InvalidMove("That control point no longer exists.")
    target_id = (
        Column.objects.filter(cycle_id=control_point.to_cycle_id)
        .order_by("order")
        .values_list("pk", flat=True)
        .first()
    )
    if target_id is None:
        raise InvalidMove(f"{control_point.to_cycle.name} has no columns yet.")
    criteria = list(control_point.criteria.all())
    met_ids = set(criteria_met_ids)
    unknown = met_ids - {criterion.pk for criterion in criteria}
    if unknown:
        raise InvalidMove("Some ticked criteria do not belong to this control point.")
    missing = [c.text for c in criteria if c.required and c.pk not in met_ids]
    if missing:
        raise CriteriaNotMet("Required criteria not met: " + "; ".join(missing) + ".")
    with _move_transaction():
        card, columns = _lock_card_and_columns(card_id=card_id, other_column_ids=[target_id])
        _check_version(card, expected_version)
        if not card.is_open:
            raise InvalidMove("This card is closed; reopen it before handing it off.")
        from_column = columns[card.column_id]
        if from_column.cycle_id != control_point.from_cycle_id:
            raise StaleBoard(
                f"This card is no longer in {control_point.from_cycle.name}; the board now "
                "shows where it is."
            )
        from_team_id = card.owning_team_id
        to_team_id = control_point.receiving_team_id or control_point.to_cycle.owning_team_id
        card.owning_team_id = to_team_id
        move = _place_card(
            card=card,
            to_column=columns[target_id],
            kind=MoveKind.HANDOFF,
            actor=actor,
            at=at,
            from_column=from_column,
            wip_override_reason=wip_override_reason,
        )
        handoff = Handoff.objects.create(
            card=card,
            control_point=control_point,
            move=move,
            from_team_id=from_team_id,
            to_team_id=to_team_id,
            actor=actor if getattr(actor, "pk", None) else None,
            handed_off_at=at,
        )
        handoff.criteria_met.set([c for c in criteria if c.pk in met_ids])
    return MoveResult(
        card=card, move=move, column_ids=frozenset(columns), columns=tuple(columns.values())
    )


def card_close(
    *,
    card_id: int,
    outcome: Outcome,
    actor,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> MoveResult:
    """Mark an open card won or lost; it leaves the flow (and its column's WIP).

    Locks: the card's column, then the card. Raises: StaleBoard, InvalidMove.
    """
    if outcome not in (Outcome.WON, Outcome.LOST):
        raise InvalidMove("A card is closed as won or lost.")
    at = at or timezone.now()
    with _move_transaction():
        card, columns = _lock_card_and_columns(card_id=card_id)
        _check_version(card, expected_version)
        if not card.is_open:
            raise InvalidMove(f"This card is already {card.get_outcome_display().lower()}.")
        column = columns[card.column_id]
        card.outcome = outcome
        card.closed_at = at
        move = _place_card(
            card=card,
            to_column=column,
            kind=MoveKind.WON if outcome == Outcome.WON else MoveKind.LOST,
            actor=actor,
            at=at,
            from_column=column,
            check_wip=False,
        )
    return MoveResult(
        card=card, move=move, column_ids=frozenset(columns), columns=tuple(columns.values())
    )


def card_reopen(
    *,
    card_id: int,
    actor,
    expected_version: int | None = None,
    wip_override_reason: str = "",
    at: datetime | None = None,
) -> MoveResult:
    """Reopen a won or lost card at the end of the column it closed in.

    Locks: the column, then the card. Raises: StaleBoard, WipLimitReached, InvalidMove.
    """
    at = at or timezone.now()
    with _move_transaction():
        card, columns = _lock_card_and_columns(card_id=card_id)
        _check_version(card, expected_version)
        if card.is_open:
            raise InvalidMove("This card is already open.")
        column = columns[card.column_id]
        card.outcome = Outcome.OPEN
        card.closed_at = None
        move = _place_card(
            card=card,
            to_column=column,
            kind=MoveKind.REOPEN,
            actor=actor,
            at=at,
            from_column=column,
            wip_override_reason=wip_override_reason,
        )
    return MoveResult(
        card=card, move=move, column_ids=frozenset(columns), columns=tuple(columns.values())
    )


def card_set_blocked(
    *,
    card_id: int,
    blocked: bool,
    reason: str = "",
    actor,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Card:
    """Block a card with a reason, or unblock it.

    Locks: the card. Raises: InvalidMove (no reason), StaleBoard.
    """
    at = at or timezone.now()
    reason = reason.strip()
    if blocked and not reason:
        raise InvalidMove("Say why the card is blocked.")
    with transaction.atomic():
        card = Card.objects.select_for_update(no_key=True).get(pk=card_id)
        _check_version(card, expected_version)
        card.is_blocked = blocked
        card.blocked_reason = reason if blocked else ""
        card.blocked_at = at if blocked else None
        card.version += 1
        card.updated_at = at
        card.save(
            update_fields=["is_blocked", "blocked_reason", "blocked_at", "version", "updated_at"]
        )
    return card


def card_update(
    *,
    card_id: int,
    actor,
    expected_version: int | None = None,
    person_name: str,
    company: str,
    email: str,
    channel_id: int | None,
    owner_id: int | None,
    estimated_value: Decimal | int,
    notes: str,
    at: datetime | None = None,
) -> Card:
    """Edit a prospect's facts and notes (not its column: that is a move).

    Locks: the card. Raises: InvalidMove, StaleBoard.
    """
    at = at or timezone.now()
    if not (person_name.strip() or company.strip()):
        raise InvalidMove("A prospect needs a person or a company.")
    with transaction.atomic():
        card = Card.objects.select_for_update(no_key=True).get(pk=card_id)
        _check_version(card, expected_version)
        if (
            channel_id is not None
            and not Channel.objects.filter(
                pk=channel_id, value_stream_id=card.value_stream_id
            ).exists()
        ):
            raise InvalidMove("That channel does not belong to this value stream.")
        card.person_name = person_name.strip()
        card.company = company.strip()
        card.email = email.strip()
        card.channel_id = channel_id
        card.owner_id = owner_id
        card.estimated_value = estimated_value
        card.notes = notes
        card.version += 1
        card.updated_at = at
        card.save()
    return card


def column_set_wip_limit(*, column_id: int, wip_limit: int | None, actor) -> Column:
    """Change a column's WIP limit. Only admins and the stream's manager may.

    Locks: the column. Raises: PermissionRefused, InvalidMove.
    """
    if wip_limit is not None and wip_limit < 1:
        raise InvalidMove("A WIP limit is empty or at least 1.")
    with transaction.atomic():
        column = _lock_columns([column_id])[column_id]
        if not user_manages_stream(actor, column.cycle.value_stream):
            raise PermissionRefused(
                "Only an admin or the value stream manager may change WIP limits."
            )
        column.wip_limit = wip_limit
        column.save(update_fields=["wip_limit", "updated_at"])
    return column


__all__ = [
    "MoveResult",
    "card_close",
    "card_create",
    "card_move",
    "card_reopen",
    "card_set_blocked",
    "card_update",
    "column_set_wip_limit",
    "handoff_pass",
    "value_stream_create",
]
