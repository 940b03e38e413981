"""Board changes that are no move but show in the metrics document (blocked cards, WIP
limits) refresh it after commit, through metrics.tasks."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from boards.models import Card, Column
from boards.services import card_create, card_set_blocked, column_set_wip_limit
from metrics import tasks
from metrics.models import MetricsProgress, StreamMetrics
from metrics.services import DOCUMENT_MAX_AGE, stream_metrics_summarize
from tests.support import as_actor, first_column
from vsm.models import ValueStream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture(autouse=True)
def _no_pending_marks():
    # The cache marks that coalesce metrics tasks must not leak from one test to the next.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(name="first_column")
def first_column_fixture(stream) -> Column:
    return first_column(stream)


@pytest.fixture
def cards(first_column, member, django_capture_on_commit_callbacks) -> list[Card]:
    """Two prospects in the first column, and the metrics document that counts them."""
    with django_capture_on_commit_callbacks(execute=True):
        created = [
            card_create(
                cycle_id=first_column.cycle_id, actor=as_actor(member), company=f"Acme {n}"
            ).card
            for n in range(2)
        ]
    assert column_doc(first_column)["wip_now"] == 2
    return created


def document(column: Column) -> dict:
    """The stored metrics document of the column's stream."""
    return StreamMetrics.objects.get(value_stream=column.cycle.value_stream).data


def column_doc(column: Column) -> dict:
    return next(doc for doc in document(column)["columns"] if doc["id"] == column.pk)


def constraint_entry(column: Column) -> dict:
    ranking = document(column)["constraint"]["ranking"]
    return next(entry for entry in ranking if entry["column_id"] == column.pk)


def test_blocking_a_card_refreshes_the_metrics_document(
    cards, first_column, member, django_capture_on_commit_callbacks
):
    assert column_doc(first_column)["blocked_now"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        card_set_blocked(
            card_id=cards[0].pk, blocked=True, reason="Budget freeze", actor=as_actor(member)
        )

    assert column_doc(first_column)["blocked_now"] == 1
    assert constraint_entry(first_column)["blocked_now"] == 1


def test_unblocking_a_card_refreshes_the_metrics_document(
    cards, first_column, member, django_capture_on_commit_callbacks
):
    Card.objects.filter(pk=cards[0].pk).update(is_blocked=True, blocked_reason="Budget")
    stream_metrics_summarize(stream_id=first_column.cycle.value_stream_id)
    assert column_doc(first_column)["blocked_now"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        card_set_blocked(card_id=cards[0].pk, blocked=False, actor=as_actor(member))

    assert column_doc(first_column)["blocked_now"] == 0


def test_changing_a_wip_limit_refreshes_the_metrics_document(
    cards, first_column, manager, django_capture_on_commit_callbacks
):
    assert column_doc(first_column)["wip_limit"] is None
    constraint_before = document(first_column)["constraint"]

    with django_capture_on_commit_callbacks(execute=True):
        column_set_wip_limit(column_id=first_column.pk, wip_limit=2, actor=as_actor(manager))

    assert column_doc(first_column)["wip_limit"] == 2
    # Two cards at a limit of 2: the constraint's evidence weighs the limit.
    assert document(first_column)["constraint"] != constraint_before


def test_the_refresh_is_enqueued_only_after_commit(
    cards, first_column, member, manager, django_capture_on_commit_callbacks
):
    def shown() -> tuple[int, int | None]:
        doc = column_doc(first_column)
        return doc["blocked_now"], doc["wip_limit"]

    publish = mock.patch.object(
        tasks.refresh_document, "apply_async", wraps=tasks.refresh_document.apply_async
    )
    with publish as published:
        with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
            card_set_blocked(
                card_id=cards[0].pk, blocked=True, reason="Budget", actor=as_actor(member)
            )
            card_set_blocked(
                card_id=cards[1].pk, blocked=True, reason="Budget", actor=as_actor(member)
            )
            column_set_wip_limit(column_id=first_column.pk, wip_limit=4, actor=as_actor(manager))
        published.assert_not_called()
        assert shown() == (0, None)

        # One refresh for the stream, however many changes the transaction held.
        assert len(callbacks) == 1
        callbacks[0]()

    published.assert_called_once_with((first_column.cycle.value_stream_id,), countdown=None)
    assert shown() == (2, 4)


def test_a_broker_that_is_down_does_not_fail_the_change(
    cards, first_column, member, django_capture_on_commit_callbacks, caplog
):
    with (
        mock.patch.object(
            tasks.refresh_document, "apply_async", side_effect=BrokerDown("connection refused")
        ),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        card_set_blocked(card_id=cards[0].pk, blocked=True, reason="Budget", actor=as_actor(member))

    assert len(callbacks) == 1
    assert Card.objects.get(pk=cards[0].pk).is_blocked
    assert "Could not enqueue metrics.refresh_document" in caplog.text
    # Nothing stays marked pending: the next change publishes again.
    stream_id = first_column.cycle.value_stream_id
    assert cache.get(tasks.REFRESH_KEY.format(stream_id=stream_id)) is None


def test_the_refresh_task_is_safe_to_run_twice_and_for_a_deleted_stream(cards, first_column):
    Card.objects.filter(pk=cards[0].pk).update(is_blocked=True, blocked_reason="Budget")
    stream_id = first_column.cycle.value_stream_id

    tasks.refresh_document.delay(stream_id)
    tasks.refresh_document.delay(stream_id)

    assert column_doc(first_column)["blocked_now"] == 1
    missing = ValueStream.objects.order_by("-pk").values_list("pk", flat=True).first() + 1
    assert tasks.refresh_document.delay(missing).get() == {"stream_id": missing, "stored": False}


def test_the_sweeper_refreshes_a_document_older_than_its_maximum_age(stream, cards):
    # A refresh lost with the broker, or the clock alone (ages, the window): the sweeper
    # recomputes any document older than DOCUMENT_MAX_AGE, and leaves fresh ones alone.
    # Written without the service, as a refresh lost with the broker would leave it.
    Card.objects.filter(pk=cards[0].pk).update(is_blocked=True, blocked_reason="Waiting")
    first = Column.objects.get(pk=cards[0].column_id)
    assert column_doc(first)["blocked_now"] == 0
    tasks.sweep()
    assert column_doc(first)["blocked_now"] == 0, "a fresh document is left alone"
    old = timezone.now() - DOCUMENT_MAX_AGE - timedelta(seconds=1)
    MetricsProgress.objects.filter(value_stream=stream).update(summary_computed_at=old)
    tasks.sweep()
    assert column_doc(first)["blocked_now"] == 1
    progress = MetricsProgress.objects.get(value_stream=stream)
    assert progress.summary_computed_at > old


# The admin's changes go through the services, which refresh the metrics document.
# One change per test: django's captured on-commit callbacks stay registered, so a
# second refresh of the same stream in one test would be taken for a duplicate.


def test_a_wip_limit_changed_on_the_column_admin_page_refreshes_the_document(
    admin_client, cards, first_column, django_capture_on_commit_callbacks
):
    form = {
        "cycle": first_column.cycle_id,
        "name": first_column.name,
        "knowledge_level": first_column.knowledge_level,
        "order": first_column.order,
        "wip_limit": 7,
        "split": "",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:boards_column_change", args=[first_column.pk]), form
        )
    assert response.status_code == 302
    assert column_doc(first_column)["wip_limit"] == 7


def test_a_wip_limit_changed_in_the_cycle_s_column_inline_refreshes_the_document(
    admin_client, cards, first_column, django_capture_on_commit_callbacks
):
    cycle = first_column.cycle
    columns = list(cycle.columns.order_by("order"))
    information = columns[1]
    inline = {
        "name": cycle.name,
        "value_stream": cycle.value_stream_id,
        "order": cycle.order,
        "owning_team": cycle.owning_team_id or "",
        "columns-TOTAL_FORMS": len(columns),
        "columns-INITIAL_FORMS": len(columns),
        "columns-MIN_NUM_FORMS": 0,
        "columns-MAX_NUM_FORMS": 1000,
    }
    for index, column in enumerate(columns):
        inline |= {
            f"columns-{index}-id": column.pk,
            f"columns-{index}-cycle": cycle.pk,
            f"columns-{index}-order": column.order,
            f"columns-{index}-name": column.name,
            f"columns-{index}-knowledge_level": column.knowledge_level,
            f"columns-{index}-wip_limit": 9 if column == information else column.wip_limit or "",
            f"columns-{index}-split": column.split,
        }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:pdca_cycle_change", args=[cycle.pk]), inline)
    assert response.status_code == 302
    assert column_doc(information)["wip_limit"] == 9


def test_a_card_blocked_on_its_admin_page_is_blocked_by_the_service(
    admin_client, cards, first_column, django_capture_on_commit_callbacks
):
    card = cards[0]
    card_form = {
        "person_name": card.person_name,
        "company": card.company,
        "email": card.email,
        "channel": card.channel_id or "",
        "owner": card.owner_id or "",
        "estimated_value": card.estimated_value,
        "notes": card.notes,
        "is_blocked": "on",
        "blocked_reason": "Waiting for the customer's budget",
        "seen_version": card.version,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:boards_card_change", args=[card.pk]), card_form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    card.refresh_from_db()
    assert (card.is_blocked, card.blocked_reason) == (True, "Waiting for the customer's budget")
    assert card.blocked_at is not None  # set by card_set_blocked
    assert column_doc(first_column)["blocked_now"] == 1
