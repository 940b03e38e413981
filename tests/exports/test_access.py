"""Who may export a stream: whoever may see it (vsm.access); anyone else is told it does
not exist, as for every page of the stream, and the refusal is audited."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tests.support import logged_in, new_card
from vsm.models import AuditEntry

EXPORTS = ["exports:cards", "exports:move-log", "exports:metrics"]


@pytest.fixture
def data(stream, manager):
    new_card(stream, manager, person_name="Ada Keller")


@pytest.mark.parametrize("name", EXPORTS)
def test_a_member_of_the_stream_may_export_it(stream, member, data, name):
    response = logged_in(member).get(reverse(name, args=[stream.slug]))

    assert response.status_code == 200
    assert response.has_header("Content-Disposition")


@pytest.mark.parametrize("name", EXPORTS)
def test_another_streams_member_is_told_it_does_not_exist(stream, other_stream, member, data, name):
    response = logged_in(other_stream.manager).get(reverse(name, args=[stream.slug]))

    assert response.status_code == 404
    assert not response.has_header("Content-Disposition")
    assert b"Ada Keller" not in response.content
    refusal = AuditEntry.objects.get(refused_code="stream_not_found")
    assert refusal.actor_id == other_stream.manager.pk
    assert not AuditEntry.objects.filter(action__endswith="_exported").exists()


@pytest.mark.parametrize("name", EXPORTS)
def test_a_stream_that_does_not_exist_is_not_found(member, data, name):
    response = logged_in(member).get(reverse(name, args=["no-such-stream"]))

    assert response.status_code == 404


@pytest.mark.parametrize("name", EXPORTS)
def test_someone_in_no_stream_is_told_it_does_not_exist(stream, data, name):
    response = logged_in(UserFactory()).get(reverse(name, args=[stream.slug]))

    assert response.status_code == 404


@pytest.mark.parametrize("name", EXPORTS)
def test_an_anonymous_visitor_is_sent_to_log_in(stream, data, name):
    url = reverse(name, args=[stream.slug])

    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", EXPORTS)
def test_only_get_is_answered(stream, manager, data, name):
    response = logged_in(manager).post(reverse(name, args=[stream.slug]))

    assert response.status_code == 405
