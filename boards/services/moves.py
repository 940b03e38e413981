"""Every way a card changes column: create, drag or keyboard, handoff, won/lost, reopen."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from boards.errors import (
    ColumnNotFound,
    ControlPointRequired,
    CriteriaNotMet,
    InvalidMove,
    LostReasonInactive,
    LostReasonRequired,
    LostReasonUnknown,
    StaleBoard,
    UndoExpired,
)
from boards.models import (
    LOST_NOTE_MAX_LENGTH,
    Card,
    CardLoss,
    CardMove,
    Column,
    Handoff,
    MoveKind,
    Outcome,
)
from boards.services.clock import event_time
from boards.services.locks import _check_version, _lock_card_and_columns, _lock_columns
from boards.services.placement import _open_totals, _place_card
from boards.services.privacy import email_suppression_check
from boards.services.rules import (
    card_channel_check,
    card_notes_check,
    card_owner_check,
    card_text_check,
    prospect_name_check,
)
from pdca.errors import ControlPointNotFound, CycleNotFound
from pdca.models import ControlPoint, Cycle
from vsm.actors import Actor, actor_fields
from vsm.models import LostReason
from vsm.transactions import locking_transaction

# A move gives up on another's row locks after this long (per statement: its columns,
# then its card), and is refused as busy: a request stuck while it holds a column must
# not keep the web threads that want the column waiting for long. Statements are
# bounded alike, as a queue of waiters restarts PostgreSQL's lock timeout. Not less:
# with 1 s, 44 of 50 moves released at once into one column on a loaded 2-core
# machine were refused as busy (docs/performance.md, "Faults").
MOVE_LOCK_TIMEOUT_SECONDS = 2.0


def _move_transaction() -> AbstractContextManager[None]:
    """``locking_transaction`` with a move's bounds."""
    return locking_transaction(
        lock_timeout=MOVE_LOCK_TIMEOUT_SECONDS, statement_timeout=MOVE_LOCK_TIMEOUT_SECONDS
    )


@dataclass(frozen=True)
class MoveResult:
    card: Card
    move: CardMove | None
    # Columns whose content changed, as read under their lock (with cycle and stream):
    # fresh, so an answer can render their heads without reading them again.
    columns: tuple[Column, ...]
    # Open cards per column after the change, and their estimated value, when the
    # service counted them under the locks (card_move): the heads then need no query.
    open_counts: Mapping[int, int] | None = None
    open_values: Mapping[int, Decimal] | None = None
    # Nothing to do: the card was asked to go to the column it is in, at no particular
    # place (a repeated "Move to..." or "Move anyway"). Nothing was written.
    unchanged: bool = False

    @property
    def column_ids(self) -> frozenset[int]:
        """The changed columns' ids, so a client can re-render just those."""
        return frozenset(column.pk for column in self.columns)


def _first_column_id(cycle_id: int) -> int | None:
    """Where cards enter a cycle: its first column (new prospects, handoffs)."""
    return (
        Column.objects.filter(cycle_id=cycle_id)
        .order_by("order")
        .values_list("pk", flat=True)
        .first()
    )


def card_create_check(
    *,
    cycle_id: int,
    stream_id: int | None,
    person_name: str = "",
    company: str = "",
    email: str = "",
    channel_id: int | None = None,
    owner_id: int | None = None,
    notes: str = "",
) -> tuple[Cycle, int]:
    """What ``card_create`` checks before its locks, in its order: whether it would take
    this prospect, short of the WIP limit, which only its locks can tell. Returns the
    cycle and the id of its first column, where the card would enter. For a caller that
    may keep the prospect waiting (the intake queue) and must refuse now what the board
    would refuse later. Reads only.
    Raises: CycleNotFound (not a cycle of ``stream_id``, when given), InvalidMove (no
    name, a control character, no columns, an owner or channel from elsewhere, an
    inactive channel, notes too long), EmailSuppressed.
    """
    prospect_name_check(person_name=person_name, company=company)
    card_text_check(person_name=person_name, company=company, email=email, notes=notes)
    cycle = Cycle.objects.filter(pk=cycle_id).first()
    if cycle is None or (stream_id is not None and cycle.value_stream_id != stream_id):
        raise CycleNotFound(data={"cycle_id": cycle_id})
    column_id = _first_column_id(cycle.pk)
    if column_id is None:
        raise InvalidMove(f"{cycle.name} has no columns yet.", data={"cycle_id": cycle.pk})
    card_owner_check(stream_id=cycle.value_stream_id, owner_id=owner_id)
    card_channel_check(stream_id=cycle.value_stream_id, channel_id=channel_id)
    email_suppression_check(email)
    card_notes_check(notes)
    return cycle, column_id


def card_create(
    *,
    cycle_id: int,
    actor: Actor,
    person_name: str = "",
    company: str = "",
    email: str = "",
    channel_id: int | None = None,
    owner_id: int | None = None,
    estimated_value: Decimal | int = 0,
    notes: str = "",
    wip_override_reason: str = "",
    stream_id: int | None = None,
    at: datetime | None = None,
) -> MoveResult:
    """Create a prospect card; it enters the first column of the cycle ``cycle_id``.

    ``stream_id``: when given, the cycle must belong to that stream (the caller's
    stream, checked by the access rule). The owner must be a member of the stream and
    the channel an active channel of it.
    Locks: the column. Raises: CycleNotFound, InvalidMove (no name, no columns, an owner
    or channel from elsewhere), EmailSuppressed (the person asked to be forgotten),
    WipLimitReached, PermissionRefused (an override).
    """
    at = event_time(at)
    cycle, column_id = card_create_check(
        cycle_id=cycle_id,
        stream_id=stream_id,
        person_name=person_name,
        company=company,
        email=email,
        channel_id=channel_id,
        owner_id=owner_id,
        notes=notes,
    )
    with _move_transaction():
        column = _lock_columns([column_id])[column_id]
        if column.cycle_id != cycle.pk or column.pk != _first_column_id(cycle.pk):
            # The cycle's columns were reordered meanwhile.
            raise StaleBoard(data={"cycle_id": cycle.pk})
        card = Card(
            value_stream_id=cycle.value_stream_id,
            person_name=person_name.strip(),
            company=company.strip(),
            email=email.strip(),
            channel_id=channel_id,
            owner_id=owner_id,
            owning_team_id=cycle.owning_team_id,
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
    return MoveResult(card=card, move=move, columns=(column,))


def card_move(
    *,
    card_id: int,
    to_column_id: int,
    actor: Actor,
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
    A card sent to the column it is already in, with no neighbour named, stays where it
    is: the result says ``unchanged`` (a repeated request changes nothing).
    Locks: both columns (ascending pk), then the card.
    Raises: StaleBoard, WipLimitReached, PermissionRefused, ControlPointRequired, InvalidMove.
    """
    at = event_time(at)
    with _move_transaction():
        card, columns = _lock_card_and_columns(
            card_id=card_id,
            other_column_ids=[to_column_id],
            expected_column_id=expected_column_id,
        )
        _check_version(card, expected_version)
        if not card.is_open:
            raise InvalidMove(
                "This card is closed; reopen it before moving it.", data={"card_id": card_id}
            )
        from_column = columns[card.column_id]
        to_column = columns[to_column_id]
        if to_column.cycle.value_stream_id != card.value_stream_id:
            raise ColumnNotFound(data={"column_id": to_column_id})
        if to_column.cycle_id != from_column.cycle_id:
            raise ControlPointRequired(
                f"Moving from {from_column.cycle.name} to {to_column.cycle.name} passes a "
                "control point: use its handoff checklist.",
                data={"from_cycle_id": from_column.cycle_id, "to_cycle_id": to_column.cycle_id},
            )
        # Both columns in one count: the WIP check needs the target's, the answer both.
        open_counts, open_values = _open_totals(columns)
        if to_column.pk == from_column.pk and after_card_id is None and before_card_id is None:
            return MoveResult(
                card=card,
                move=None,
                columns=tuple(columns.values()),
                open_counts=open_counts,
                open_values=open_values,
                unchanged=True,
            )
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
            open_values[from_column.pk] -= card.estimated_value
            open_values[to_column.pk] += card.estimated_value
    return MoveResult(
        card=card,
        move=move,
        columns=tuple(columns.values()),
        open_counts=open_counts,
        open_values=open_values,
    )


def handoff_pass(
    *,
    card_id: int,
    control_point_id: int,
    criteria_met_ids: Iterable[int],
    actor: Actor,
    expected_version: int | None = None,
    wip_override_reason: str = "",
    at: datetime | None = None,
) -> MoveResult:
    """Pass a card through a control point into the first column of the next cycle.

    Locks: the card's column and the target column (ascending pk), then the card.
    Raises: CriteriaNotMet, StaleBoard, WipLimitReached, PermissionRefused, InvalidMove.
    Side effects: the card now belongs to the receiving team; a Handoff row records it.
    """
    at = event_time(at)
    control_point = (
        ControlPoint.objects.select_related("from_cycle", "to_cycle")
        .filter(pk=control_point_id)
        .first()
    )
    if control_point is None:
        raise ControlPointNotFound(data={"control_point_id": control_point_id})
    target_id = _first_column_id(control_point.to_cycle_id)
    if target_id is None:
        raise InvalidMove(
            f"{control_point.to_cycle.name} has no columns yet.",
            data={"cycle_id": control_point.to_cycle_id},
        )
    criteria = list(control_point.criteria.all())
    met_ids = set(criteria_met_ids)
    unknown = met_ids - {criterion.pk for criterion in criteria}
    if unknown:
        raise InvalidMove(
            "Some ticked criteria do not belong to this control point.",
            data={"criterion_ids": tuple(sorted(unknown))},
            field="criteria",
        )
    missing = [c for c in criteria if c.required and c.pk not in met_ids]
    if missing:
        raise CriteriaNotMet(
            "Required criteria not met: " + "; ".join(c.text for c in missing) + ".",
            data={"criterion_ids": tuple(c.pk for c in missing)},
            field="criteria",
        )
    with _move_transaction():
        card, columns = _lock_card_and_columns(card_id=card_id, other_column_ids=[target_id])
        _check_version(card, expected_version)
        if control_point.from_cycle.value_stream_id != card.value_stream_id:
            raise ControlPointNotFound(data={"control_point_id": control_point_id})
        if not card.is_open:
            raise InvalidMove(
                "This card is closed; reopen it before handing it off.", data={"card_id": card_id}
            )
        from_column = columns[card.column_id]
        if from_column.cycle_id != control_point.from_cycle_id:
            raise StaleBoard(
                f"This card is no longer in {control_point.from_cycle.name}.",
                data={"card_id": card_id, "column_id": from_column.pk},
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
        assert move is not None, "a handoff changes cycle, so it always logs a move"
        handoff = Handoff.objects.create(
            card=card,
            control_point=control_point,
            move=move,
            from_team_id=from_team_id,
            to_team_id=to_team_id,
            **actor_fields(actor),
            handed_off_at=at,
        )
        handoff.criteria_met.set([c for c in criteria if c.pk in met_ids])
    return MoveResult(card=card, move=move, columns=tuple(columns.values()))


def card_close(
    *,
    card_id: int,
    outcome: Outcome,
    actor: Actor,
    expected_version: int | None = None,
    lost_reason_id: int | None = None,
    lost_note: str = "",
    at: datetime | None = None,
) -> MoveResult:
    """Mark an open card won or lost; it leaves the flow (and its column's WIP).

    A lost card records why, beside its lost move (CardLoss): a reason from its
    stream's active list (``lost_reason_id``), a note in the seller's words
    (``lost_note``), or both; one of the two is required once the stream keeps a list.
    The note is stripped, its line breaks kept as LF (a browser posts CRLF).
    Locks: the card's column, then the card. Raises: StaleBoard, InvalidMove (a closed
    card; a reason or note for a won deal; a note too long), LostReasonRequired,
    LostReasonUnknown, LostReasonInactive.
    Side effects: the move's audit row; a CardLoss row when a reason or note was given.
    """
    if outcome not in (Outcome.WON, Outcome.LOST):
        raise InvalidMove("A card is closed as won or lost.", field="outcome")
    lost_note = lost_note.replace("\r\n", "\n").strip()
    if outcome == Outcome.WON and (lost_reason_id is not None or lost_note):
        raise InvalidMove("Only a lost deal has a lost reason.", field="lost_reason")
    if len(lost_note) > LOST_NOTE_MAX_LENGTH:
        raise InvalidMove(
            f"A note is at most {LOST_NOTE_MAX_LENGTH:,} characters; "
            f"this one has {len(lost_note):,}.",
            data={"max_length": LOST_NOTE_MAX_LENGTH},
            field="lost_note",
        )
    at = event_time(at)
    with _move_transaction():
        card, columns = _lock_card_and_columns(card_id=card_id)
        _check_version(card, expected_version)
        if not card.is_open:
            raise InvalidMove(
                f"This card is already {card.get_outcome_display().lower()}.",
                data={"card_id": card_id},
            )
        reason = None
        if outcome == Outcome.LOST:
            reason = _lost_reason_check(
                card=card, lost_reason_id=lost_reason_id, has_note=bool(lost_note)
            )
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
        assert move is not None, "closing a card always logs a move"
        if reason is not None or lost_note:
            # Setting move= caches the loss on the move: its answer reads no row.
            CardLoss.objects.create(move=move, reason=reason, note=lost_note)
        else:
            CardMove.loss.related.set_cached_value(move, None)
    return MoveResult(card=card, move=move, columns=tuple(columns.values()))


def _lost_reason_check(
    *, card: Card, lost_reason_id: int | None, has_note: bool
) -> LostReason | None:
    """The reason a card is lost for: one of its stream's active reasons, or none when a
    note says why or the stream keeps no list.

    Raises: LostReasonUnknown, LostReasonInactive, LostReasonRequired.
    """
    if lost_reason_id is None:
        keeps_a_list = LostReason.objects.filter(
            value_stream_id=card.value_stream_id, is_active=True
        ).exists()
        if keeps_a_list and not has_note:
            raise LostReasonRequired(data={"card_id": card.pk}, field="lost_reason")
        return None
    reason = LostReason.objects.filter(pk=lost_reason_id).first()
    if reason is None or reason.value_stream_id != card.value_stream_id:
        raise LostReasonUnknown(data={"lost_reason_id": lost_reason_id}, field="lost_reason")
    if not reason.is_active:
        raise LostReasonInactive(data={"lost_reason_id": lost_reason_id}, field="lost_reason")
    return reason


# How long whoever closed a deal may undo it. An undo mends a mistake: the card takes
# back its place in its column even if the column has filled up since (it never left
# the work; nothing new is pulled). After that, reopening is a decision of its own,
# under the column's WIP limit.
CLOSE_UNDO_WINDOW = timedelta(minutes=5)
# The audit action of a reopen that undoes a close, by the close's kind: the move log
# has a reopen (the flow is the same), the audit log says it mended a mistake, and the
# card's timeline reads it from there ("Undid won").
CLOSE_UNDONE_ACTIONS: dict[str, str] = {
    MoveKind.WON: "card.won_undone",
    MoveKind.LOST: "card.lost_undone",
}


def card_reopen(
    *,
    card_id: int,
    actor: Actor,
    expected_version: int | None = None,
    wip_override_reason: str = "",
    undo: bool = False,
    at: datetime | None = None,
) -> MoveResult:
    """Reopen a won or lost card at the end of the column it closed in.

    ``undo``: mend the close just made: the card's last move is ``actor``'s close, made
    within CLOSE_UNDO_WINDOW, and ``expected_version`` the version it returned; the
    column's WIP limit is not checked.
    Locks: the column, then the card. Raises: StaleBoard, WipLimitReached, InvalidMove,
    UndoExpired.
    Side effects: the move's audit row, "card.reopened", or for an undo
    CLOSE_UNDONE_ACTIONS' ("card.won_undone").
    """
    at = event_time(at)
    if undo and expected_version is None:
        raise InvalidMove("An undo names the version the close returned.", field="version")
    with _move_transaction():
        card, columns = _lock_card_and_columns(card_id=card_id)
        _check_version(card, expected_version)
        if card.is_open:
            raise InvalidMove("This card is already open.", data={"card_id": card_id})
        undone = _undo_check(card=card, actor=actor, at=at) if undo else None
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
            check_wip=not undo,
            audit_action=CLOSE_UNDONE_ACTIONS[undone.kind] if undone else "",
        )
    return MoveResult(card=card, move=move, columns=tuple(columns.values()))


def close_undoable_by(*, move: CardMove, actor: Actor, at: datetime) -> bool:
    """Whether ``actor`` may undo the close ``move`` (a card's last move) at ``at``."""
    recorded = {field: getattr(move, field) for field in actor_fields(actor)}
    return (
        move.kind in (MoveKind.WON, MoveKind.LOST)
        and recorded == actor_fields(actor)
        and move.moved_at <= at <= move.moved_at + CLOSE_UNDO_WINDOW
    )


def _undo_check(*, card: Card, actor: Actor, at: datetime) -> CardMove:
    """The close to undo: the card's last move, if it is ``actor``'s close, made within
    CLOSE_UNDO_WINDOW before ``at``. Raises: UndoExpired otherwise."""
    last = CardMove.objects.filter(card=card).order_by("-moved_at", "-id").first()
    if last is None or not close_undoable_by(move=last, actor=actor, at=at):
        raise UndoExpired(data={"card_id": card.pk})
    return last
