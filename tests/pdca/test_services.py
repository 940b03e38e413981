"""The PDCA configuration services: cycles, control points and their criteria.

Every team and cycle they name is of the row's own stream; each refusal changes nothing
and announces nothing; each write leaves an audit row and one "stream changed".
"""

from __future__ import annotations

import pytest

from boards.models import Column
from boards.services import card_create, handoff_pass
from pdca import services
from pdca.errors import ControlPointNotFound, CycleNotFound
from pdca.models import ControlPoint, Criterion, Cycle
from tests.factories import TeamFactory
from tests.support import TEST_SYSTEM, as_actor
from vsm.errors import InvalidInput, PermissionRefused
from vsm.models import AuditEntry, Team
from vsm.services import InUse, NotInStream, NotUnique

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycles(stream) -> list[Cycle]:
    return list(Cycle.objects.filter(value_stream=stream).order_by("order"))


@pytest.fixture
def sales_team(stream) -> Team:
    return TeamFactory(value_stream=stream, name="Sales")


def last_audit(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("id")


# --- cycles --------------------------------------------------------------------------


def test_cycle_update_gives_the_cycle_to_a_team_of_its_stream(
    stream,
    manager,
    cycles,
    sales_team,
    announced,
):
    with announced() as sent:
        services.cycle_update(
            cycle_id=cycles[1].pk,
            actor=as_actor(manager),
            name="Buying",
            owning_team_id=sales_team.pk,
        )

    row = Cycle.objects.get(pk=cycles[1].pk)
    assert (row.name, row.owning_team_id, row.order) == ("Buying", sales_team.pk, 2)
    entry = last_audit("cycle.updated")
    assert (entry.stream_id, entry.target_type, entry.target_id) == (
        stream.pk,
        "cycle",
        cycles[1].pk,
    )
    assert entry.data == {"order": 2, "owning_team_id": sales_team.pk}
    assert sent == [(stream.pk, ["settings"])]


def test_cycle_update_can_leave_the_team_as_it_is_or_clear_it(cycles, team):
    services.cycle_update(cycle_id=cycles[0].pk, actor=TEST_SYSTEM, name="Awareness")
    assert Cycle.objects.get(pk=cycles[0].pk).owning_team_id == team.pk

    services.cycle_update(cycle_id=cycles[0].pk, actor=TEST_SYSTEM, owning_team_id=None)
    assert Cycle.objects.get(pk=cycles[0].pk).owning_team_id is None


def test_a_cycle_is_owned_by_a_team_of_its_own_stream_only(
    cycles,
    team,
    other_stream,
    announced,
):
    foreign_team = other_stream.teams.get()

    with announced() as sent, pytest.raises(NotInStream) as refused:
        services.cycle_update(
            cycle_id=cycles[0].pk, actor=TEST_SYSTEM, owning_team_id=foreign_team.pk
        )

    assert (refused.value.code, refused.value.field) == ("not_in_stream", "owning_team")
    assert Cycle.objects.get(pk=cycles[0].pk).owning_team_id == team.pk
    assert not AuditEntry.objects.filter(action="cycle.updated").exists()
    assert sent == []


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"name": "Sales/Buying"}, NotUnique, "name"),
        ({"order": 2}, NotUnique, "order"),
        ({"order": 40_000}, InvalidInput, "order"),
        ({"name": ""}, InvalidInput, "name"),
    ],
)
def test_cycle_update_refusals(cycles, change, error, field):
    with pytest.raises(error) as refused:
        services.cycle_update(cycle_id=cycles[0].pk, actor=TEST_SYSTEM, **change)

    assert refused.value.field == field
    assert Cycle.objects.get(pk=cycles[0].pk).name == "Collaboration"


def test_cycle_create_at_the_end_and_delete_while_unused(stream, announced):  # noqa: F811
    with announced() as created:
        cycle = services.cycle_create(stream_id=stream.pk, name="Referral", actor=TEST_SYSTEM)
    with announced() as deleted:
        services.cycle_delete(cycle_id=cycle.pk, actor=TEST_SYSTEM)

    assert cycle.order == 4
    assert not Cycle.objects.filter(pk=cycle.pk).exists()
    assert [e.action for e in AuditEntry.objects.filter(target_type="cycle")] == [
        "cycle.deleted",
        "cycle.created",
    ]
    assert created == deleted == [(stream.pk, ["settings"])]


def test_a_cycle_that_cards_entered_is_not_deleted(stream, manager, cycles):
    card_create(cycle_id=cycles[0].pk, actor=as_actor(manager), company="Acme")

    with pytest.raises(InUse) as refused:
        services.cycle_delete(cycle_id=cycles[0].pk, actor=TEST_SYSTEM)

    assert "still holds cards" in refused.value.message
    assert Column.objects.filter(cycle=cycles[0]).count() == 4


def test_cycles_are_steered(cycles, member, user):
    with pytest.raises(PermissionRefused):
        services.cycle_update(cycle_id=cycles[0].pk, actor=as_actor(member), name="Mine")
    with pytest.raises(CycleNotFound):
        services.cycle_update(cycle_id=cycles[0].pk, actor=as_actor(user), name="Mine")


# --- control points ------------------------------------------------------------------


def test_control_point_create_between_cycles_of_one_stream(
    stream,
    cycles,
    sales_team,
    announced,
):
    ControlPoint.objects.filter(from_cycle=cycles[0]).delete()

    with announced() as sent:
        control_point = services.control_point_create(
            from_cycle_id=cycles[0].pk,
            to_cycle_id=cycles[1].pk,
            name="Qualified",
            receiving_team_id=sales_team.pk,
            actor=TEST_SYSTEM,
        )

    row = ControlPoint.objects.get(pk=control_point.pk)
    assert (row.from_cycle_id, row.to_cycle_id, row.receiving_team_id, row.name) == (
        cycles[0].pk,
        cycles[1].pk,
        sales_team.pk,
        "Qualified",
    )
    assert last_audit("control_point.created").data == {
        "from_cycle_id": cycles[0].pk,
        "to_cycle_id": cycles[1].pk,
        "receiving_team_id": sales_team.pk,
    }
    assert sent == [(stream.pk, ["settings"])]


def test_control_point_create_refusals(cycles, other_stream, announced):  # noqa: F811
    foreign_cycle = other_stream.cycles.order_by("order").first()
    foreign_team = other_stream.teams.get()

    with announced() as sent:
        with pytest.raises(NotInStream) as other_cycle:
            services.control_point_create(
                from_cycle_id=cycles[2].pk, to_cycle_id=foreign_cycle.pk, actor=TEST_SYSTEM
            )
        with pytest.raises(NotInStream) as other_team:
            services.control_point_create(
                from_cycle_id=cycles[1].pk,
                to_cycle_id=cycles[2].pk,
                receiving_team_id=foreign_team.pk,
                actor=TEST_SYSTEM,
            )
        with pytest.raises(InvalidInput) as to_itself:
            services.control_point_create(
                from_cycle_id=cycles[2].pk, to_cycle_id=cycles[2].pk, actor=TEST_SYSTEM
            )
        with pytest.raises(NotUnique):
            services.control_point_create(
                from_cycle_id=cycles[0].pk, to_cycle_id=cycles[1].pk, actor=TEST_SYSTEM
            )
        with pytest.raises(CycleNotFound):
            services.control_point_create(
                from_cycle_id=987654, to_cycle_id=cycles[1].pk, actor=TEST_SYSTEM
            )

    assert (other_cycle.value.field, other_team.value.field, to_itself.value.field) == (
        "to_cycle",
        "receiving_team",
        "to_cycle",
    )
    assert ControlPoint.objects.filter(from_cycle__value_stream=cycles[0].value_stream).count() == 2
    assert sent == []


def test_control_point_update_keeps_its_receiving_team_in_its_stream(
    stream, other_stream, sales_team
):
    control_point = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=1)
    foreign_team = other_stream.teams.get()

    with pytest.raises(NotInStream):
        services.control_point_update(
            control_point_id=control_point.pk,
            receiving_team_id=foreign_team.pk,
            actor=TEST_SYSTEM,
        )
    services.control_point_update(
        control_point_id=control_point.pk, receiving_team_id=sales_team.pk, actor=TEST_SYSTEM
    )

    assert ControlPoint.objects.get(pk=control_point.pk).receiving_team_id == sales_team.pk
    assert last_audit("control_point.updated").data["receiving_team_id"] == sales_team.pk


def test_a_control_point_that_cards_passed_is_not_deleted(stream, manager, cycles):
    control_point = ControlPoint.objects.get(from_cycle=cycles[0])
    card = card_create(cycle_id=cycles[0].pk, actor=as_actor(manager), company="Acme").card
    handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=control_point.criteria.values_list("pk", flat=True),
        actor=as_actor(manager),
    )

    with pytest.raises(InUse) as refused:
        services.control_point_delete(control_point_id=control_point.pk, actor=TEST_SYSTEM)

    assert "handed off through this control point" in refused.value.message
    assert ControlPoint.objects.filter(pk=control_point.pk).exists()


def test_control_point_delete_with_its_criteria(stream, cycles, announced):  # noqa: F811
    control_point = ControlPoint.objects.get(from_cycle=cycles[0])

    with announced() as sent:
        services.control_point_delete(control_point_id=control_point.pk, actor=TEST_SYSTEM)

    assert not ControlPoint.objects.filter(pk=control_point.pk).exists()
    assert not Criterion.objects.filter(control_point_id=control_point.pk).exists()
    assert last_audit("control_point.deleted").target_id == control_point.pk
    assert sent == [(stream.pk, ["settings"])]


def test_control_points_are_steered(stream, member, user):
    control_point = ControlPoint.objects.filter(from_cycle__value_stream=stream).first()
    with pytest.raises(PermissionRefused):
        services.control_point_update(
            control_point_id=control_point.pk, name="Mine", actor=as_actor(member)
        )
    with pytest.raises(ControlPointNotFound):
        services.control_point_delete(control_point_id=control_point.pk, actor=as_actor(user))


# --- criteria ------------------------------------------------------------------------


def test_criterion_create_update_delete(stream, announced):  # noqa: F811
    control_point = ControlPoint.objects.filter(from_cycle__value_stream=stream).first()

    with announced() as created:
        criterion = services.criterion_create(
            control_point_id=control_point.pk,
            text=" Budget confirmed ",
            required=False,
            order=9,
            actor=TEST_SYSTEM,
        )
    with announced() as updated:
        services.criterion_update(criterion_id=criterion.pk, required=True, actor=TEST_SYSTEM)
    row = Criterion.objects.get(pk=criterion.pk)
    with announced() as deleted:
        services.criterion_delete(criterion_id=criterion.pk, actor=TEST_SYSTEM)

    assert (row.text, row.required, row.order) == ("Budget confirmed", True, 9)
    assert not Criterion.objects.filter(pk=criterion.pk).exists()
    assert [
        (e.action, e.data)
        for e in AuditEntry.objects.filter(target_type="criterion").order_by("id")
    ] == [
        (
            "criterion.created",
            {"control_point_id": control_point.pk, "required": False, "order": 9},
        ),
        ("criterion.updated", {"control_point_id": control_point.pk, "required": True, "order": 9}),
        ("criterion.deleted", {"control_point_id": control_point.pk}),
    ]
    assert created == updated == deleted == [(stream.pk, ["settings"])]


def test_criterion_refusals(stream, member):
    control_point = ControlPoint.objects.filter(from_cycle__value_stream=stream).first()
    criterion = control_point.criteria.first()

    with pytest.raises(InvalidInput) as blank:
        services.criterion_create(control_point_id=control_point.pk, text=" ", actor=TEST_SYSTEM)
    with pytest.raises(InvalidInput):
        services.criterion_update(criterion_id=criterion.pk, order=-1, actor=TEST_SYSTEM)
    with pytest.raises(services.CriterionNotFound):
        services.criterion_delete(criterion_id=987654, actor=TEST_SYSTEM)
    with pytest.raises(PermissionRefused):
        services.criterion_delete(criterion_id=criterion.pk, actor=as_actor(member))

    assert blank.value.field == "text"
    assert Criterion.objects.filter(pk=criterion.pk).exists()


# --- criteria that handoffs ticked ---------------------------------------------------


def test_a_criterion_ticked_in_a_handoff_is_reworded_not_deleted(stream, manager, cycles):
    control_point = ControlPoint.objects.get(from_cycle=cycles[0])
    ticked, unticked = list(control_point.criteria.order_by("order"))[:2]
    card = card_create(cycle_id=cycles[0].pk, actor=as_actor(manager), company="Acme").card
    handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=[ticked.pk, unticked.pk],
        actor=as_actor(manager),
    )
    fresh = services.criterion_create(
        control_point_id=control_point.pk, text="Budget known", actor=TEST_SYSTEM
    )

    with pytest.raises(InUse) as refused:
        services.criterion_delete(criterion_id=ticked.pk, actor=TEST_SYSTEM)
    services.criterion_update(criterion_id=ticked.pk, text="Problem understood", actor=TEST_SYSTEM)
    services.criterion_delete(criterion_id=fresh.pk, actor=TEST_SYSTEM)

    assert (refused.value.code, refused.value.data) == (
        "in_use",
        {"criterion_id": ticked.pk, "handoffs": 1},
    )
    assert Criterion.objects.get(pk=ticked.pk).text == "Problem understood"
    assert not Criterion.objects.filter(pk=fresh.pk).exists()
    assert not AuditEntry.objects.filter(action="criterion.deleted", target_id=ticked.pk).exists()


# --- control points lead to the next cycle -------------------------------------------


@pytest.mark.parametrize(("from_index", "to_index"), [(0, 2), (2, 0), (1, 0), (2, 1)])
def test_control_point_create_refuses_to_skip_or_reverse_cycles(
    cycles,
    from_index,
    to_index,
    announced,
):
    with announced() as sent, pytest.raises(services.NotNextCycle) as refused:
        services.control_point_create(
            from_cycle_id=cycles[from_index].pk,
            to_cycle_id=cycles[to_index].pk,
            actor=TEST_SYSTEM,
        )

    assert (refused.value.code, refused.value.field) == ("not_next_cycle", "to_cycle")
    assert ControlPoint.objects.filter(from_cycle__value_stream=cycles[0].value_stream).count() == 2
    assert sent == []


def test_control_point_update_keeps_it_leading_to_the_next_cycle(cycles):
    control_point = ControlPoint.objects.get(from_cycle=cycles[0])

    with pytest.raises(services.NotNextCycle):
        services.control_point_update(
            control_point_id=control_point.pk, to_cycle_id=cycles[2].pk, actor=TEST_SYSTEM
        )
    services.control_point_update(
        control_point_id=control_point.pk, name="Qualified", actor=TEST_SYSTEM
    )

    row = ControlPoint.objects.get(pk=control_point.pk)
    assert (row.to_cycle_id, row.name) == (cycles[1].pk, "Qualified")


def test_a_cycles_order_keeps_every_control_point_leading_to_the_next_cycle(stream, cycles):
    with pytest.raises(services.NotNextCycle) as moved:
        services.cycle_update(cycle_id=cycles[0].pk, order=9, actor=TEST_SYSTEM)
    # Renumbering without changing the sequence is fine.
    services.cycle_update(cycle_id=cycles[2].pk, order=7, actor=TEST_SYSTEM)
    with pytest.raises(services.NotNextCycle) as between:
        services.cycle_create(stream_id=stream.pk, name="Referral", order=5, actor=TEST_SYSTEM)
    referral = services.cycle_create(stream_id=stream.pk, name="Referral", actor=TEST_SYSTEM)
    onward = services.control_point_create(
        from_cycle_id=cycles[2].pk, to_cycle_id=referral.pk, actor=TEST_SYSTEM
    )

    assert (moved.value.field, between.value.field) == ("order", "order")
    assert moved.value.data == {
        "control_point_id": ControlPoint.objects.get(from_cycle=cycles[0]).pk,
        "order": 9,
    }
    assert list(
        Cycle.objects.filter(value_stream=stream).order_by("order").values_list("name", "order")
    ) == [("Collaboration", 1), ("Sales/Buying", 2), ("Repeat/Upsell", 7), ("Referral", 8)]
    assert (onward.from_cycle_id, onward.to_cycle_id) == (cycles[2].pk, referral.pk)


def test_a_cycle_name_is_taken_in_any_case(stream, cycles):
    with pytest.raises(NotUnique) as taken:
        services.cycle_create(stream_id=stream.pk, name="sales/buying", actor=TEST_SYSTEM)
    with pytest.raises(NotUnique):
        services.cycle_update(cycle_id=cycles[0].pk, name="REPEAT/UPSELL", actor=TEST_SYSTEM)

    assert taken.value.message == "A cycle “Sales/Buying” already exists here."
    assert Cycle.objects.filter(value_stream=stream).count() == 3
