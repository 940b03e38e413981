"""Every write of the board leaves exactly one audit row, and a refused one none.

Each row is re-read from the database: its action, stream, target, the actor's
columns for each kind of actor (a person, an API token of the stream, the system), and
data of ids, numbers and flags only: no name, e-mail or reason ever reaches the log.
Moves and handoffs record the same actor on their own rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

import pytest

from boards.errors import (
    ControlPointRequired,
    CriteriaNotMet,
    InvalidMove,
    StaleBoard,
    WipLimitReached,
)
from boards.models import Card, CardMove, Column, Handoff, Outcome
from boards.services import (
    DEFAULT_CYCLES,
    card_close,
    card_create,
    card_move,
    card_reopen,
    card_set_blocked,
    card_update,
    column_set_wip_limit,
    handoff_pass,
    value_stream_create,
)
from pdca.models import ControlPoint
from tests.factories import CardFactory, ChannelFactory, UserFactory
from tests.support import TEST_SYSTEM
from vsm.actors import Actor, ActorKind, SystemActor, TokenActor, UserActor, actor_fields
from vsm.errors import PermissionRefused
from vsm.models import AuditEntry, Team
from vsm.services import NotUnique

pytestmark = pytest.mark.django_db

FIRST, SECOND = DEFAULT_CYCLES[0], DEFAULT_CYCLES[1]
TOKEN_ID = 7


@dataclass(frozen=True)
class Expected:
    action: str
    target_type: str
    target_id: int
    data: dict = field(default_factory=dict)
    stream_id: int | None = None  # the board's stream unless said


@pytest.fixture
def board(stream, manager, member):
    """The stream's first cycle's columns, the next cycle's first column, its control
    point, and its people."""
    data, information, knowledge, wisdom = Column.objects.filter(
        cycle__value_stream=stream, cycle__name=FIRST
    ).order_by("order")
    return SimpleNamespace(
        stream=stream,
        manager=manager,
        member=member,
        data=data,
        information=information,
        knowledge=knowledge,
        wisdom=wisdom,
        next_first=Column.objects.get(cycle__value_stream=stream, cycle__name=SECOND, order=1),
        control_point=ControlPoint.objects.get(
            from_cycle__value_stream=stream, from_cycle__name=FIRST
        ),
    )


def actor_of(kind: str, board) -> Actor:
    """The actor of each kind; the person is the stream's manager, who may do anything."""
    return {
        "user": UserActor(board.manager),
        "token": TokenActor(token_id=TOKEN_ID, stream_id=board.stream.pk),
        "system": SystemActor("import"),
    }[kind]


def actor_columns(row) -> dict[str, object]:
    return {
        "actor_kind": row.actor_kind,
        "actor_id": row.actor_id,
        "actor_token_id": row.actor_token_id,
        "actor_system": row.actor_system,
    }


def strings_in(value: object) -> list[str]:
    """Every string in ``value``, however nested."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings_in(item)]
    return []


# Each write: arrange (before the mark), then an act and what its one row must say.
Act = Callable[[], object]
Expect = Callable[[object], Expected]


def move_data(from_column, to_column, result, *, overridden: bool = False) -> dict:
    return {
        "from_column_id": from_column.pk if from_column else None,
        "to_column_id": to_column.pk,
        "move_id": result.move.pk if result.move else None,
        "wip_overridden": overridden,
    }


def write_card_create(board, actor) -> tuple[Act, Expect]:
    def act():
        return card_create(
            cycle_id=board.data.cycle_id,
            actor=actor,
            person_name="Ada Keller",
            company="Nordwerk Pumps",
            email="ada@nordwerk.example",
            notes="Met at the trade fair",
            estimated_value=Decimal("12000.00"),
        )

    return act, lambda result: Expected(
        "card.entered", "card", result.card.pk, move_data(None, board.data, result)
    )


def write_card_move(board, actor) -> tuple[Act, Expect]:
    card = CardFactory(column=board.data)
    return (
        lambda: card_move(card_id=card.pk, to_column_id=board.information.pk, actor=actor),
        lambda result: Expected(
            "card.moved", "card", card.pk, move_data(board.data, board.information, result)
        ),
    )


def write_card_reorder(board, actor) -> tuple[Act, Expect]:
    card, other = CardFactory(column=board.data), CardFactory(column=board.data)
    return (
        lambda: card_move(
            card_id=card.pk, to_column_id=board.data.pk, after_card_id=other.pk, actor=actor
        ),
        lambda result: Expected(
            "card.reordered", "card", card.pk, move_data(board.data, board.data, result)
        ),
    )


def write_card_override(board, actor) -> tuple[Act, Expect]:
    Column.objects.filter(pk=board.information.pk).update(wip_limit=1)
    CardFactory(column=board.information)
    card = CardFactory(column=board.data)
    return (
        lambda: card_move(
            card_id=card.pk,
            to_column_id=board.information.pk,
            actor=actor,
            wip_override_reason="Ada's board asked for a demo",
        ),
        lambda result: Expected(
            "card.moved",
            "card",
            card.pk,
            move_data(board.data, board.information, result, overridden=True),
        ),
    )


def write_handoff_pass(board, actor) -> tuple[Act, Expect]:
    card = CardFactory(column=board.wisdom)
    criteria = list(board.control_point.criteria.filter(required=True).values_list("pk", flat=True))
    return (
        lambda: handoff_pass(
            card_id=card.pk,
            control_point_id=board.control_point.pk,
            criteria_met_ids=criteria,
            actor=actor,
        ),
        lambda result: Expected(
            "card.handed_off", "card", card.pk, move_data(board.wisdom, board.next_first, result)
        ),
    )


def write_card_close(outcome: Outcome) -> Callable:
    def write(board, actor) -> tuple[Act, Expect]:
        card = CardFactory(column=board.knowledge)
        return (
            lambda: card_close(card_id=card.pk, outcome=outcome, actor=actor),
            lambda result: Expected(
                f"card.{outcome.value}",
                "card",
                card.pk,
                move_data(board.knowledge, board.knowledge, result),
            ),
        )

    return write


def write_card_reopen(board, actor) -> tuple[Act, Expect]:
    card = CardFactory(column=board.knowledge)
    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=TEST_SYSTEM)
    return (
        lambda: card_reopen(card_id=card.pk, actor=actor),
        lambda result: Expected(
            "card.reopened", "card", card.pk, move_data(board.knowledge, board.knowledge, result)
        ),
    )


def write_card_block(board, actor) -> tuple[Act, Expect]:
    card = CardFactory(column=board.data)
    return (
        lambda: card_set_blocked(
            card_id=card.pk, blocked=True, reason="Ada is on holiday", actor=actor
        ),
        lambda result: Expected("card.blocked", "card", card.pk, {"version": result.version}),
    )


def write_card_unblock(board, actor) -> tuple[Act, Expect]:
    card = CardFactory(column=board.data)
    card_set_blocked(card_id=card.pk, blocked=True, reason="Waiting", actor=TEST_SYSTEM)
    return (
        lambda: card_set_blocked(card_id=card.pk, blocked=False, actor=actor),
        lambda result: Expected("card.unblocked", "card", card.pk, {"version": result.version}),
    )


def write_card_update(board, actor) -> tuple[Act, Expect]:
    card = CardFactory(column=board.data, person_name="Ada Keller", company="Nordwerk")
    channel = ChannelFactory(value_stream=board.stream)
    return (
        lambda: card_update(
            card_id=card.pk,
            actor=actor,
            person_name="Ada Keller-Ott",
            company="Nordwerk",
            email="ada.ott@nordwerk.example",
            channel_id=channel.pk,
            owner_id=board.member.pk,
            estimated_value=card.estimated_value,
            notes=card.notes,
        ),
        lambda result: Expected(
            "card.updated",
            "card",
            card.pk,
            {
                "version": result.version,
                "changed_fields": 4,
                "changed_person_name": True,
                "changed_email": True,
                "changed_channel_id": True,
                "changed_owner_id": True,
            },
        ),
    )


def write_column_wip_limit(board, actor) -> tuple[Act, Expect]:
    previous = board.information.wip_limit
    return (
        lambda: column_set_wip_limit(column_id=board.information.pk, wip_limit=3, actor=actor),
        lambda result: Expected(
            "column.wip_limit_set",
            "column",
            board.information.pk,
            {"previous": previous, "wip_limit": 3},
        ),
    )


def write_value_stream_create(board, actor) -> tuple[Act, Expect]:
    new_manager = UserFactory(first_name="Grace", email="grace@example.com")
    return (
        lambda: value_stream_create(
            actor=actor,
            name="Water treatment",
            customer_market="Municipal utilities",
            manager=new_manager,
            description="Grace's stream",
        ),
        lambda result: Expected(
            "stream.created",
            "stream",
            result.pk,
            {"manager_id": new_manager.pk, "team_id": Team.objects.get(value_stream=result).pk},
            stream_id=result.pk,
        ),
    )


WRITES = {
    "card_create": write_card_create,
    "card_move": write_card_move,
    "card_move reorder": write_card_reorder,
    "card_move over the WIP limit": write_card_override,
    "handoff_pass": write_handoff_pass,
    "card_close won": write_card_close(Outcome.WON),
    "card_close lost": write_card_close(Outcome.LOST),
    "card_reopen": write_card_reopen,
    "card_set_blocked block": write_card_block,
    "card_set_blocked unblock": write_card_unblock,
    "card_update": write_card_update,
    "column_set_wip_limit": write_column_wip_limit,
    "value_stream_create": write_value_stream_create,
}
# A token does not steer its stream: it may not override a WIP limit nor set one.
STEERING = {"card_move over the WIP limit", "column_set_wip_limit"}
CASES = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in WRITES
    for kind in ("user", "token", "system")
    if not (kind == "token" and name in STEERING)
]


def audit_mark() -> int:
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


@pytest.mark.parametrize(("write", "kind"), CASES)
def test_each_write_leaves_exactly_one_audit_row(board, write, kind):
    actor = actor_of(kind, board)
    act, expect = WRITES[write](board, actor)
    mark = audit_mark()

    result = act()

    rows = list(AuditEntry.objects.filter(pk__gt=mark))
    assert len(rows) == 1, [row.action for row in rows]
    row = rows[0]
    expected = expect(result)
    assert (row.action, row.target_type, row.target_id) == (
        expected.action,
        expected.target_type,
        expected.target_id,
    )
    assert row.stream_id == (expected.stream_id or board.stream.pk)
    assert row.refused_code == ""
    assert actor_columns(row) == actor_fields(actor)
    assert row.data == expected.data
    assert strings_in(row.data) == [], "no text in the audit log"


MOVE_WRITES = [
    "card_create",
    "card_move",
    "handoff_pass",
    "card_close won",
    "card_close lost",
    "card_reopen",
]


@pytest.mark.parametrize("kind", ["user", "token", "system"])
@pytest.mark.parametrize("write", MOVE_WRITES)
def test_the_move_records_the_same_actor_and_time_as_the_audit_row(board, write, kind):
    actor = actor_of(kind, board)
    act, _ = WRITES[write](board, actor)
    mark = audit_mark()

    result = act()

    row = AuditEntry.objects.get(pk__gt=mark)
    move = CardMove.objects.get(pk=result.move.pk)
    assert row.data["move_id"] == move.pk
    assert actor_columns(move) == actor_fields(actor)
    assert move.moved_at == row.at
    if write == "handoff_pass":
        handoff = Handoff.objects.get(move=move)
        assert actor_columns(handoff) == actor_fields(actor)
        assert handoff.handed_off_at == row.at


def test_a_system_move_names_no_person(board):
    result = card_create(cycle_id=board.data.cycle_id, actor=TEST_SYSTEM, person_name="Ada")

    move = CardMove.objects.get(pk=result.move.pk)
    assert (move.actor_kind, move.actor_id, move.actor_system) == (
        ActorKind.SYSTEM,
        None,
        TEST_SYSTEM.name,
    )
    assert move.actor_label == f"System ({TEST_SYSTEM.name})"


# Refusals: no row, and nothing else written ------------------------------------------------


def refuse_card_create_nameless(board):
    return InvalidMove, lambda: card_create(cycle_id=board.data.cycle_id, actor=TEST_SYSTEM)


def refuse_card_create_full(board):
    Column.objects.filter(pk=board.data.pk).update(wip_limit=1)
    CardFactory(column=board.data)
    return WipLimitReached, lambda: card_create(
        cycle_id=board.data.cycle_id, actor=UserActor(board.member), person_name="Ada"
    )


def refuse_card_move_full(board):
    Column.objects.filter(pk=board.information.pk).update(wip_limit=1)
    CardFactory(column=board.information)
    card = CardFactory(column=board.data)
    return WipLimitReached, lambda: card_move(
        card_id=card.pk, to_column_id=board.information.pk, actor=UserActor(board.member)
    )


def refuse_member_override(board):
    Column.objects.filter(pk=board.information.pk).update(wip_limit=1)
    CardFactory(column=board.information)
    card = CardFactory(column=board.data)
    return PermissionRefused, lambda: card_move(
        card_id=card.pk,
        to_column_id=board.information.pk,
        actor=UserActor(board.member),
        wip_override_reason="I insist",
    )


def refuse_stale_move(board):
    card = CardFactory(column=board.data)
    return StaleBoard, lambda: card_move(
        card_id=card.pk,
        to_column_id=board.information.pk,
        actor=UserActor(board.member),
        expected_version=card.version + 1,
    )


def refuse_move_across_cycles(board):
    card = CardFactory(column=board.wisdom)
    return ControlPointRequired, lambda: card_move(
        card_id=card.pk, to_column_id=board.next_first.pk, actor=UserActor(board.member)
    )


def refuse_handoff_without_criteria(board):
    card = CardFactory(column=board.wisdom)
    return CriteriaNotMet, lambda: handoff_pass(
        card_id=card.pk,
        control_point_id=board.control_point.pk,
        criteria_met_ids=[],
        actor=UserActor(board.member),
    )


def refuse_close_closed(board):
    card = CardFactory(column=board.knowledge)
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=TEST_SYSTEM)
    return InvalidMove, lambda: card_close(
        card_id=card.pk, outcome=Outcome.LOST, actor=UserActor(board.member)
    )


def refuse_reopen_open(board):
    card = CardFactory(column=board.knowledge)
    return InvalidMove, lambda: card_reopen(card_id=card.pk, actor=UserActor(board.member))


def refuse_block_without_reason(board):
    card = CardFactory(column=board.data)
    return InvalidMove, lambda: card_set_blocked(
        card_id=card.pk, blocked=True, actor=UserActor(board.member)
    )


def refuse_stale_block(board):
    card = CardFactory(column=board.data)
    return StaleBoard, lambda: card_set_blocked(
        card_id=card.pk,
        blocked=True,
        reason="Waiting",
        actor=UserActor(board.member),
        expected_version=card.version + 1,
    )


def refuse_update_owner_elsewhere(board):
    card = CardFactory(column=board.data)
    return InvalidMove, lambda: card_update(
        card_id=card.pk,
        actor=UserActor(board.member),
        person_name="Ada",
        company="",
        email="",
        channel_id=None,
        owner_id=UserFactory().pk,
        estimated_value=0,
        notes="",
    )


def refuse_wip_limit_by_member(board):
    return PermissionRefused, lambda: column_set_wip_limit(
        column_id=board.information.pk, wip_limit=3, actor=UserActor(board.member)
    )


def refuse_wip_limit_by_token(board):
    token = TokenActor(token_id=TOKEN_ID, stream_id=board.stream.pk)
    return PermissionRefused, lambda: column_set_wip_limit(
        column_id=board.information.pk, wip_limit=3, actor=token
    )


def refuse_wip_limit_out_of_range(board):
    return InvalidMove, lambda: column_set_wip_limit(
        column_id=board.information.pk, wip_limit=0, actor=UserActor(board.manager)
    )


def refuse_stream_name_taken(board):
    return NotUnique, lambda: value_stream_create(
        actor=TEST_SYSTEM,
        name=board.stream.name,
        customer_market="Anyone",
        manager=board.manager,
    )


REFUSALS = {
    "card_create without a name": refuse_card_create_nameless,
    "card_create into a full column": refuse_card_create_full,
    "card_move into a full column": refuse_card_move_full,
    "card_move override by a member": refuse_member_override,
    "card_move on a stale version": refuse_stale_move,
    "card_move across cycles": refuse_move_across_cycles,
    "handoff_pass without its criteria": refuse_handoff_without_criteria,
    "card_close of a closed card": refuse_close_closed,
    "card_reopen of an open card": refuse_reopen_open,
    "card_set_blocked without a reason": refuse_block_without_reason,
    "card_set_blocked on a stale version": refuse_stale_block,
    "card_update to an owner from elsewhere": refuse_update_owner_elsewhere,
    "column_set_wip_limit by a member": refuse_wip_limit_by_member,
    "column_set_wip_limit by a token": refuse_wip_limit_by_token,
    "column_set_wip_limit of 0": refuse_wip_limit_out_of_range,
    "value_stream_create with a taken name": refuse_stream_name_taken,
}


def board_state(board) -> tuple:
    return (
        sorted(Card.objects.values_list("pk", "column_id", "version", "outcome", "is_blocked")),
        CardMove.objects.count(),
        Handoff.objects.count(),
        sorted(Column.objects.values_list("pk", "wip_limit")),
    )


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_write_leaves_no_audit_row_and_changes_nothing(board, refusal):
    error_class, act = REFUSALS[refusal](board)
    mark, before = audit_mark(), board_state(board)

    with pytest.raises(error_class):
        act()

    assert list(AuditEntry.objects.filter(pk__gt=mark).values_list("action", flat=True)) == []
    assert board_state(board) == before
