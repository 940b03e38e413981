"""The intake queue: prospects waiting for room in the first column of their cycle.

A prospect joins the line when that column is full, or when others already wait for it
(a newcomer never jumps the line): from an import (intake.services.run), or one at a
time from a web form (``prospect_intake``). Pulled oldest first, through
``boards.services.card_create`` (the WIP rule, the move log), by the system ("intake"),
whenever the stream changes (intake.stream_changed) and by the intake sweep. Two
workers never pull the same prospect, and never out of order: a pull holds the
column's lock (as a move into it would) while it takes the oldest prospect in line,
skipping one that someone is removing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import TypedDict

from django.db import transaction
from django.db.models import Q

from boards.errors import InvalidMove, WipLimitReached
from boards.models import Card, Column
from boards.services import EmailSuppressed, card_create, card_create_check
from boards.services.privacy import email_digest
from intake.errors import IntakeItemNotFound
from intake.models import IntakeItem
from intake.services.enqueue import task_send
from vsm.access import stream_access, stream_steer_check
from vsm.actors import Actor, SystemActor
from vsm.audit import audit_record
from vsm.errors import Busy, DomainError
from vsm.transactions import locking_transaction

# Who pulls a waiting prospect in: the product, when room appears.
INTAKE_ACTOR = SystemActor("intake")
# Prospects pulled per run at most; a worker sends itself the rest.
PULL_BATCH = 200
PULL_TASK = "intake.pull"

# Streams this thread is pulling for: run in-process (tasks eager), each card a pull
# creates announces a change whose consumer would pull again, inside this pull.
_pulling = threading.local()


@dataclass(frozen=True)
class PullResult:
    """What one pull did: cards created, prospects held aside (refused for a reason of
    their own), dropped (their person asked to be forgotten), and whether more could be
    pulled now (the batch ran out before the room or the line did)."""

    created: int = 0
    held: int = 0
    dropped: int = 0
    more: bool = False


def intake_pull(*, stream_id: int, limit: int = PULL_BATCH) -> PullResult:
    """Pull the stream's waiting prospects into the first column of their cycles, oldest
    first, while the WIP limit has room: stops at the first WipLimitReached per cycle.

    A prospect refused for its own reason (its channel deactivated, its owner gone) is
    held aside with the reason, not retried until someone asks; one whose e-mail was
    suppressed meanwhile is dropped. A pull already running in this thread for the
    stream makes this one return at once.
    Locks: each time, the cycle's first column, then the oldest prospect in line
    (SKIP LOCKED). Raises: nothing of the board's (busy columns end the pull: the next
    change or the sweep pulls again).
    Side effects: cards (card_create, by the system "intake"); audit rows
    "intake_item.pulled", "intake_item.held", "intake_item.dropped".
    """
    active: set[int] = getattr(_pulling, "streams", set())
    _pulling.streams = active
    if stream_id in active:
        return PullResult()
    active.add(stream_id)
    created = held = dropped = 0
    try:
        cycle_ids = list(
            IntakeItem.objects.filter(value_stream_id=stream_id, held_code="")
            .order_by("cycle_id")
            .values_list("cycle_id", flat=True)
            .distinct()
        )
        for cycle_id in cycle_ids:
            while created + held + dropped < limit:
                outcome = _pull_one(cycle_id)
                if outcome == "created":
                    created += 1
                elif outcome == "held":
                    held += 1
                elif outcome == "dropped":
                    dropped += 1
                else:
                    break
        return PullResult(
            created=created, held=held, dropped=dropped, more=created + held + dropped >= limit
        )
    finally:
        active.discard(stream_id)


@dataclass(frozen=True)
class IntakeResult:
    """What became of one prospect: its ``card`` (it entered the first column), or its
    ``item`` in the intake queue and its ``position`` in line (1: next to enter), as
    they were when it was queued. Exactly one of ``card`` and ``item`` is set."""

    card: Card | None = None
    item: IntakeItem | None = None
    position: int | None = None

    @property
    def queued(self) -> bool:
        return self.item is not None


class _ProspectFacts(TypedDict):
    person_name: str
    company: str
    email: str
    channel_id: int | None
    owner_id: int | None
    notes: str


def prospect_intake(
    *,
    cycle_id: int,
    stream_id: int,
    actor: Actor,
    person_name: str = "",
    company: str = "",
    email: str = "",
    channel_id: int | None = None,
    owner_id: int | None = None,
    estimated_value: Decimal | int = 0,
    notes: str = "",
) -> IntakeResult:
    """One new prospect (a web form's) into the first column of the cycle ``cycle_id``,
    or into the intake queue when that column is full or others wait for it already.

    The prospect is checked as card_create checks it before anything is decided: one it
    would refuse is refused now, never queued to be held later.
    Locks: the cycle's first column (as a pull does, so that a pull and this take turns
    and the line check holds until commit), then card_create's locks.
    Raises: CycleNotFound (not a cycle of ``stream_id``), InvalidMove (no name, a
    negative value, no columns, an owner or channel from elsewhere, an inactive
    channel, notes too long), EmailSuppressed, StaleBoard (the cycle's columns
    reordered meanwhile), Busy.
    Side effects: a card (card_create, by ``actor``), or an intake item and an audit row
    "intake_item.queued" (its cycle and position); behind others, after commit, a pull
    of the stream's queue (room may have appeared before the pull it called for ran).
    """
    facts: _ProspectFacts = {
        "person_name": person_name,
        "company": company,
        "email": email,
        "channel_id": channel_id,
        "owner_id": owner_id,
        "notes": notes,
    }
    # card_update's rule on the value: the queue's row refuses a negative one too.
    if Decimal(estimated_value) < 0:
        raise InvalidMove("An estimated value is 0 or more.", field="estimated_value")
    _cycle, column_id = card_create_check(cycle_id=cycle_id, stream_id=stream_id, **facts)
    with locking_transaction():
        # The column first, as a pull and card_create take it: the line seen here stays
        # as seen until this commits, so a newcomer never slips past a prospect queued
        # (or pulled) meanwhile.
        list(Column.objects.select_for_update(no_key=True).filter(pk=column_id).values("pk"))
        line_waiting = IntakeItem.objects.filter(cycle_id=cycle_id, held_code="").exists()
        if not line_waiting:
            try:
                with transaction.atomic():
                    result = card_create(
                        cycle_id=cycle_id,
                        stream_id=stream_id,
                        actor=actor,
                        estimated_value=estimated_value,
                        **facts,
                    )
                return IntakeResult(card=result.card)
            except WipLimitReached:
                pass  # full: it waits (card_create checked it before its count)
        item = IntakeItem.objects.create(
            value_stream_id=stream_id,
            cycle_id=cycle_id,
            person_name=person_name.strip(),
            company=company.strip(),
            email=email.strip(),
            email_digest=email_digest(email) if email.strip() else "",
            channel_id=channel_id,
            owner_id=owner_id,
            estimated_value=estimated_value,
            notes=notes,
        )
        position = _position_in_line(item)
        _audit(
            item,
            "intake_item.queued",
            data={"cycle_id": cycle_id, "position": position},
            actor=actor,
        )
        if line_waiting:
            task_send(PULL_TASK, stream_id)
    return IntakeResult(item=item, position=position)


def _position_in_line(item: IntakeItem) -> int:
    """The waiting item's place in its cycle's line, counted as a pull takes them: by
    (queued_at, id), held items aside."""
    return (
        IntakeItem.objects.filter(cycle_id=item.cycle_id, held_code="")
        .filter(Q(queued_at__lt=item.queued_at) | Q(queued_at=item.queued_at, pk__lte=item.pk))
        .count()
    )


def _pull_one(cycle_id: int) -> str:
    """Pull the cycle's oldest prospect in line: "created", "held", "dropped", or why
    none was: "full", "empty", "busy"."""
    column_id = (
        Column.objects.filter(cycle_id=cycle_id).order_by("order").values_list("pk", flat=True)
    ).first()
    if column_id is None:
        return "full"  # a cycle without columns takes no card yet
    try:
        with locking_transaction():
            # The column first, as card_create locks it: pulls of one cycle take turns.
            list(Column.objects.select_for_update(no_key=True).filter(pk=column_id).values("pk"))
            item = (
                IntakeItem.objects.select_for_update(skip_locked=True)
                .filter(cycle_id=cycle_id, held_code="")
                .order_by("queued_at", "id")
                .first()
            )
            if item is None:
                return "empty"
            return _enter(item)
    except Busy:
        return "busy"


def _enter(item: IntakeItem) -> str:
    """Create the locked item's card and take it out of the queue, in the caller's
    transaction; or hold or drop it."""
    try:
        with transaction.atomic():
            result = card_create(
                cycle_id=item.cycle_id,
                stream_id=item.value_stream_id,
                actor=INTAKE_ACTOR,
                person_name=item.person_name,
                company=item.company,
                email=item.email,
                channel_id=item.channel_id,
                owner_id=item.owner_id,
                estimated_value=item.estimated_value,
                notes=item.notes,
            )
    except WipLimitReached:
        return "full"
    except Busy:
        raise
    except EmailSuppressed:
        _audit(item, "intake_item.dropped", data={"job_id": item.source_job_id})
        item.delete()
        return "dropped"
    except DomainError as error:
        item.held_code = error.code[:40]
        item.held_message = error.message[:300]
        item.save(update_fields=["held_code", "held_message"])
        _audit(item, "intake_item.held", data={"job_id": item.source_job_id})
        return "held"
    _audit(
        item,
        "intake_item.pulled",
        data={"card_id": result.card.pk, "job_id": item.source_job_id},
    )
    item.delete()
    return "created"


def _audit(
    item: IntakeItem, action: str, *, data: dict[str, int | None], actor: Actor = INTAKE_ACTOR
) -> None:
    audit_record(
        actor=actor,
        action=action,
        stream_id=item.value_stream_id,
        target_type="intake_item",
        target_id=item.pk,
        data=data,
    )


def _item_locked(*, item_id: int, stream_id: int, actor: Actor) -> IntakeItem:
    stream = stream_access(actor=actor, stream_id=stream_id)
    stream_steer_check(actor=actor, stream=stream, what="change the intake queue")
    item = (
        IntakeItem.objects.select_for_update(no_key=True)
        .filter(pk=item_id, value_stream_id=stream_id)
        .first()
    )
    if item is None:
        raise IntakeItemNotFound(data={"item_id": item_id})
    return item


def intake_item_remove(*, item_id: int, stream_id: int, actor: Actor) -> None:
    """Take a waiting prospect out of the intake queue for good (no card is made).

    Locks: the item (waiting while a pull holds it). Raises: StreamNotFound,
    PermissionRefused, IntakeItemNotFound (pulled or removed meanwhile), Busy.
    Side effects: an audit row "intake_item.removed".
    """
    with locking_transaction():
        item = _item_locked(item_id=item_id, stream_id=stream_id, actor=actor)
        _audit(item, "intake_item.removed", data={"job_id": item.source_job_id}, actor=actor)
        item.delete()


def intake_item_retry(*, item_id: int, stream_id: int, actor: Actor) -> IntakeItem:
    """Put a held prospect back in line (its channel was reactivated, say); it keeps its
    place by the time it was queued.

    Locks: the item. Raises: StreamNotFound, PermissionRefused, IntakeItemNotFound,
    Busy. Side effects: an audit row "intake_item.retried"; after commit, a pull.
    """
    with locking_transaction():
        item = _item_locked(item_id=item_id, stream_id=stream_id, actor=actor)
        if item.held_code:
            item.held_code = ""
            item.held_message = ""
            item.save(update_fields=["held_code", "held_message"])
            _audit(item, "intake_item.retried", data={"job_id": item.source_job_id}, actor=actor)
            task_send(PULL_TASK, stream_id)
    return item
