"""The audit log: ids and numbers only, the actor's columns per kind, its named
constraints, append-only on PostgreSQL, and rows that outlive the people they name."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction

from boards.models import CardMove
from boards.services import card_create
from tests.factories import MembershipFactory, UserFactory
from vsm.actors import ActorKind, SystemActor, TokenActor, UserActor, actor_fields
from vsm.audit import audit_record, audit_refusal_record
from vsm.errors import PermissionRefused
from vsm.models import AuditEntry

pytestmark = pytest.mark.django_db


def actor_columns(entry: AuditEntry) -> tuple:
    return (entry.actor_kind, entry.actor_id, entry.actor_token_id, entry.actor_system)


def test_audit_record_writes_one_row_of_ids_and_numbers(user):
    entry = audit_record(
        actor=UserActor(user),
        action="card.moved",
        stream_id=4,
        target_type="card",
        target_id=17,
        data={
            "from_column_id": 2,
            "to_column_id": 3,
            "move_id": None,
            "wip_overridden": False,
            "criterion_ids": (5, 6),
            "share": 0.25,
        },
    )

    stored = AuditEntry.objects.get()
    assert stored.pk == entry.pk
    assert (stored.action, stored.stream_id, stored.target_type, stored.target_id) == (
        "card.moved",
        4,
        "card",
        17,
    )
    assert stored.refused_code == ""
    assert stored.data == {
        "from_column_id": 2,
        "to_column_id": 3,
        "move_id": None,
        "wip_overridden": False,
        "criterion_ids": [5, 6],
        "share": 0.25,
    }


def test_an_amount_is_kept_exact(user):
    audit_record(
        actor=UserActor(user),
        action="card.updated",
        stream_id=1,
        data={"estimated_value": Decimal("1234.50")},
    )

    assert AuditEntry.objects.get().data == {"estimated_value": "1234.50"}


@pytest.mark.parametrize(
    "data",
    [
        {"person_name": "Ada Keller"},
        {"email": "ada@example.com"},
        {"ids": (1, "2")},
        {"reason": ["Strategic account"]},
    ],
    ids=repr,
)
def test_audit_record_refuses_personal_data_and_writes_nothing(user, data):
    with pytest.raises(TypeError):
        audit_record(actor=UserActor(user), action="card.updated", stream_id=1, data=data)

    assert not AuditEntry.objects.exists()


@pytest.fixture
def person(db):
    return UserFactory()


@pytest.mark.parametrize(
    ("make_actor", "columns"),
    [
        (lambda person: UserActor(person), lambda person: (ActorKind.USER, person.pk, None, "")),
        (
            lambda person: UserActor(AnonymousUser()),
            lambda person: (ActorKind.USER, None, None, ""),
        ),
        (
            lambda person: TokenActor(token_id=41, stream_id=3),
            lambda person: (ActorKind.TOKEN, None, 41, ""),
        ),
        (
            lambda person: SystemActor("import"),
            lambda person: (ActorKind.SYSTEM, None, None, "import"),
        ),
    ],
    ids=["user", "anonymous", "token", "system"],
)
def test_actor_columns_per_actor_kind(person, make_actor, columns):
    actor = make_actor(person)

    audit_record(actor=actor, action="stream.updated", stream_id=3)

    stored = AuditEntry.objects.get()
    assert actor_columns(stored) == columns(person)
    assert actor_fields(actor) == dict(
        zip(
            ("actor_kind", "actor_id", "actor_token_id", "actor_system"),
            columns(person),
            strict=True,
        )
    )


@pytest.mark.parametrize(
    ("make_actor", "label"),
    [
        (lambda person: TokenActor(token_id=41, stream_id=3), "API token 41"),
        (lambda person: SystemActor("demo"), "System (demo)"),
        (lambda person: UserActor(person), "ada"),
        (lambda person: UserActor(AnonymousUser()), "Someone"),
    ],
    ids=["token", "system", "user", "anonymous"],
)
def test_actor_label_names_each_kind(make_actor, label):
    person = UserFactory(username="ada")
    audit_record(actor=make_actor(person), action="stream.updated", stream_id=3)

    assert AuditEntry.objects.get().actor_label == label


@pytest.mark.parametrize("name", ["", "x" * 41])
def test_a_system_actor_has_a_short_name(name):
    with pytest.raises(ValueError, match="1 to 40"):
        SystemActor(name)


@pytest.mark.parametrize(
    ("columns", "constraint"),
    [
        (
            {"actor_kind": ActorKind.TOKEN, "actor_token_id": None},
            "vsm_auditentry_token_actor_has_token",
        ),
        (
            {"actor_kind": ActorKind.SYSTEM, "actor_system": ""},
            "vsm_auditentry_system_actor_has_name",
        ),
        ({"actor_kind": "robot"}, "vsm_auditentry_actor_kind_valid"),
        ({"action": "Card moved"}, "vsm_auditentry_action_format"),
        ({"action": "moved"}, "vsm_auditentry_action_format"),
    ],
    ids=["token without token id", "system without name", "unknown kind", "prose", "no entity"],
)
def test_the_database_refuses_an_inconsistent_row(columns, constraint):
    row = {"actor_kind": ActorKind.USER, "action": "card.moved", "stream_id": 1, **columns}

    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        AuditEntry.objects.create(**row)

    assert not AuditEntry.objects.exists()


def test_a_refusal_is_recorded_with_its_code_and_data(user):
    error = PermissionRefused("Only an admin may.", data={"stream_id": 5, "column_id": 8})

    audit_refusal_record(
        actor=UserActor(user),
        action="http.column_wip_limit",
        error=error,
        stream_id=5,
    )

    stored = AuditEntry.objects.get()
    assert (stored.action, stored.refused_code, stored.stream_id) == (
        "http.column_wip_limit",
        "permission_refused",
        5,
    )
    assert stored.data == {"stream_id": 5, "column_id": 8}
    assert actor_columns(stored) == (ActorKind.USER, user.pk, None, "")


def test_a_refusal_recorded_outside_the_refused_transaction_survives_its_rollback(user):
    with pytest.raises(PermissionRefused), transaction.atomic():
        audit_record(actor=UserActor(user), action="column.wip_limit_set", stream_id=5)
        raise PermissionRefused(data={"stream_id": 5})
    audit_refusal_record(
        actor=UserActor(user),
        action="http.column_wip_limit",
        error=PermissionRefused(data={"stream_id": 5}),
        stream_id=5,
    )

    assert list(AuditEntry.objects.values_list("action", "refused_code")) == [
        ("http.column_wip_limit", "permission_refused")
    ]


def test_deleting_a_user_leaves_their_audit_rows_with_their_id(person):
    person_id = person.pk
    entry = audit_record(actor=UserActor(person), action="card.moved", stream_id=1)

    person.delete()

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert actor_columns(stored) == (ActorKind.USER, person_id, None, "")
    assert stored.action == "card.moved"


def test_an_audit_row_of_a_deleted_user_still_names_its_actor(person):
    """The admin's audit list and change page show ``actor_label`` and ``str(entry)``:
    a deleted person is named by the id the row keeps, not an error."""
    entry = audit_record(actor=UserActor(person), action="card.moved", stream_id=1)
    person.delete()

    stored = AuditEntry.objects.get(pk=entry.pk)

    assert stored.actor_label == f"A person no longer here (user {entry.actor_id})"
    assert str(stored).startswith("card.moved by A person no longer here (user ")


@pytest.mark.postgres
class TestAppendOnlyOnPostgreSQL:
    def test_an_update_is_refused(self, person):
        entry = audit_record(actor=UserActor(person), action="card.moved", stream_id=1)

        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            AuditEntry.objects.filter(pk=entry.pk).update(action="card.lost")
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            entry.data = {"erased": True}
            entry.save()

        stored = AuditEntry.objects.get(pk=entry.pk)
        assert (stored.action, stored.data) == ("card.moved", {})

    def test_a_delete_is_refused(self, person):
        entry = audit_record(actor=UserActor(person), action="card.moved", stream_id=1)

        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            AuditEntry.objects.filter(pk=entry.pk).delete()
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            entry.delete()

        assert AuditEntry.objects.filter(pk=entry.pk).exists()

    def test_deleting_a_user_updates_no_audit_row(self, person):
        """No cascade may touch the log: the trigger would refuse the user's deletion."""
        person_id = person.pk
        audit_record(actor=UserActor(person), action="card.moved", stream_id=1)

        person.delete()

        assert AuditEntry.objects.get().actor_id == person_id

    def test_deleting_a_user_who_moved_cards_keeps_the_logs(self, stream, team):
        """A person who ever moved a card can still be deleted: the move log and the
        audit log both keep their rows (the log's append-only trigger refuses the
        SET NULL that deleting the move's actor would cascade to)."""
        person = MembershipFactory(team=team).user
        person_id = person.pk
        first_cycle = stream.cycles.order_by("order").first()
        move = card_create(
            cycle_id=first_cycle.pk, actor=UserActor(person), person_name="Ada Keller"
        ).move

        person.delete()

        assert CardMove.objects.filter(pk=move.pk).exists()
        assert AuditEntry.objects.get(action="card.entered").actor_id == person_id
