"""A stream's lost reasons: kept by those who steer it, through the services (audited,
announced) and the admin; deactivated, never deleted."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import UserFactory, ValueStreamFactory
from tests.support import TEST_SYSTEM, as_actor, logged_in
from vsm import services
from vsm.errors import InvalidInput, PermissionRefused
from vsm.models import LOST_REASON_MAX_LENGTH, AuditEntry, LostReason
from vsm.services import LostReasonNotFound, NotUnique
from vsm.services.lost_reasons import LOST_REASON_ORDER_MAX

pytestmark = pytest.mark.django_db

NAME_REFUSAL = f"A lost reason's name is at most {LOST_REASON_MAX_LENGTH} characters."
ORDER_REFUSAL = f"An order is a whole number from 0 to {LOST_REASON_ORDER_MAX:,}."


def audit_rows() -> list[tuple[str, int | None, dict]]:
    return [
        (entry.action, entry.target_id, entry.data)
        for entry in AuditEntry.objects.filter(target_type="lost_reason").order_by("id")
    ]


def test_create_update_and_deactivate_are_audited_and_announced(stream, manager, announced):
    actor = as_actor(manager)
    with announced() as created:
        budget = services.lost_reason_create(stream_id=stream.pk, name=" No budget ", actor=actor)
        rival = services.lost_reason_create(
            stream_id=stream.pk, name="Chose a competitor", actor=actor
        )
    with announced() as updated:
        services.lost_reason_update(
            lost_reason_id=rival.pk, name="Chose a rival", order=0, actor=actor
        )
    with announced() as deactivated:
        services.lost_reason_deactivate(lost_reason_id=budget.pk, actor=actor)

    rows = {row.pk: row for row in LostReason.objects.filter(value_stream=stream)}
    assert (rows[budget.pk].name, rows[budget.pk].order, rows[budget.pk].is_active) == (
        "No budget",
        0,
        False,
    )
    # A new reason goes after the last one unless an order is given.
    assert (rows[rival.pk].name, rows[rival.pk].order, rows[rival.pk].is_active) == (
        "Chose a rival",
        0,
        True,
    )
    assert audit_rows() == [
        ("lost_reason.created", budget.pk, {"active": True, "order": 0}),
        ("lost_reason.created", rival.pk, {"active": True, "order": 1}),
        ("lost_reason.updated", rival.pk, {"active": True, "order": 0}),
        ("lost_reason.deactivated", budget.pk, {"active": False, "order": 0}),
    ]
    entry = AuditEntry.objects.filter(action="lost_reason.created").first()
    assert entry is not None and (entry.stream_id, entry.actor_id) == (stream.pk, manager.pk)
    assert created == [(stream.pk, ["settings"])]
    assert updated == deactivated == [(stream.pk, ["settings"])]


def test_a_name_is_unique_in_its_stream_in_any_case(stream, announced):
    other_stream = ValueStreamFactory()
    services.lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)
    price = services.lost_reason_create(stream_id=stream.pk, name="Price", actor=TEST_SYSTEM)

    with announced() as sent:
        with pytest.raises(NotUnique) as taken:
            services.lost_reason_create(stream_id=stream.pk, name="NO BUDGET", actor=TEST_SYSTEM)
        with pytest.raises(NotUnique):
            services.lost_reason_update(
                lost_reason_id=price.pk, name="no budget", actor=TEST_SYSTEM
            )

    assert taken.value.message == "A lost reason “No budget” already exists here."
    assert (taken.value.code, taken.value.field) == ("not_unique", "name")
    assert sent == []
    # Another stream keeps a list of its own.
    services.lost_reason_create(stream_id=other_stream.pk, name="No budget", actor=TEST_SYSTEM)
    assert LostReason.objects.filter(name__iexact="no budget").count() == 2


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "  "}, "name", "A lost reason needs a name."),
        ({"name": "x" * (LOST_REASON_MAX_LENGTH + 1)}, "name", NAME_REFUSAL),
        ({"name": "Late", "order": -1}, "order", ORDER_REFUSAL),
        ({"name": "Late", "order": 40_000}, "order", ORDER_REFUSAL),
    ],
)
def test_bad_input_is_a_clear_refusal_on_its_field(stream, fields, field, message):
    with pytest.raises(InvalidInput) as refused:
        services.lost_reason_create(stream_id=stream.pk, actor=TEST_SYSTEM, **fields)

    assert (refused.value.field, refused.value.message) == (field, message)
    assert not LostReason.objects.exists()
    assert audit_rows() == []


def test_only_those_who_steer_the_stream_keep_its_list(stream, member):
    outsider = UserFactory()
    reason = services.lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)

    with pytest.raises(PermissionRefused):
        services.lost_reason_create(stream_id=stream.pk, name="Mine", actor=as_actor(member))
    with pytest.raises(PermissionRefused):
        services.lost_reason_deactivate(lost_reason_id=reason.pk, actor=as_actor(member))
    # Beyond the actor's reach, the reason is as missing as one that does not exist.
    with pytest.raises(LostReasonNotFound):
        services.lost_reason_update(lost_reason_id=reason.pk, name="X", actor=as_actor(outsider))
    with pytest.raises(LostReasonNotFound):
        services.lost_reason_deactivate(lost_reason_id=10**9, actor=TEST_SYSTEM)

    assert LostReason.objects.get(pk=reason.pk).is_active
    assert LostReason.objects.filter(value_stream=stream).count() == 1


# --- the admin ---------------------------------------------------------------------


@pytest.fixture
def admin_client(db):
    return logged_in(UserFactory(username="root", is_staff=True, is_superuser=True))


def admin_url(view: str, *args: int) -> str:
    return reverse(f"admin:vsm_lostreason_{view}", args=args)


def test_the_admin_adds_and_edits_through_the_services(admin_client, stream):
    added = admin_client.post(
        admin_url("add"),
        {"value_stream": stream.pk, "name": "No budget", "order": "3", "is_active": "on"},
    )
    reason = LostReason.objects.get()
    renamed = admin_client.post(
        admin_url("change", reason.pk), {"name": "Budget frozen", "order": "3", "is_active": "on"}
    )

    assert (added.status_code, renamed.status_code) == (302, 302)
    reason.refresh_from_db()
    assert (reason.name, reason.order, reason.value_stream_id) == ("Budget frozen", 3, stream.pk)
    assert [action for action, _, _ in audit_rows()] == [
        "lost_reason.created",
        "lost_reason.updated",
    ]


def test_a_taken_name_is_an_error_on_the_admin_form(admin_client, stream):
    services.lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)
    price = services.lost_reason_create(stream_id=stream.pk, name="Price", actor=TEST_SYSTEM)

    response = admin_client.post(
        admin_url("change", price.pk), {"name": "no budget", "order": "1", "is_active": "on"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "name": ["A lost reason “No budget” already exists here."]
    }
    assert LostReason.objects.get(pk=price.pk).name == "Price"


def test_the_admin_deactivates_and_never_deletes(admin_client, stream):
    reason = services.lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)

    response = admin_client.post(
        admin_url("changelist"),
        {"action": "deactivate_lost_reasons", "_selected_action": [reason.pk]},
    )

    assert response.status_code == 302
    assert LostReason.objects.get(pk=reason.pk).is_active is False
    assert AuditEntry.objects.get(action="lost_reason.deactivated").target_id == reason.pk
    assert admin_client.get(admin_url("delete", reason.pk)).status_code == 403
