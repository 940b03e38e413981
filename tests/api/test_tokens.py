"""API tokens: made by an admin or the stream's manager, the secret shown once and
stored as a digest only, revoked on the stream's page or in the admin; each change
audited; nobody else may make or revoke them."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from api.errors import ApiTokenNotFound
from api.models import ApiToken, TokenScope
from api.services import (
    LAST_USED_RESOLUTION,
    api_token_create,
    api_token_mark_used,
    api_token_revoke,
)
from tests.api.conftest import bearer
from tests.factories import UserFactory
from tests.support import TEST_SYSTEM, logged_in
from vsm.access import StreamNotFound
from vsm.actors import TokenActor, UserActor
from vsm.errors import InvalidInput, PermissionRefused
from vsm.models import AuditEntry

pytestmark = pytest.mark.django_db

TOKEN_FORMAT = re.compile(r"vsm_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def _tokens_url(stream) -> str:
    return reverse("api_pages:tokens", args=[stream.slug])


def _form(name: str, scope: str = TokenScope.INTAKE) -> dict[str, str]:
    """The page's form as a browser sends it: the name, the scope (preselected:
    intake), and the form's own "once"."""
    return {"name": name, "scope": scope, "once": secrets.token_urlsafe(24)}


def _issued_secret(response) -> str:
    match = re.search(r'data-testid="issued-secret"', response.content.decode())
    assert match is not None, "the page shows no new token"
    found = TOKEN_FORMAT.findall(response.content.decode())
    assert len(found) == 1
    return found[0]


def test_the_manager_makes_a_token_and_sees_its_secret_once(stream, manager):
    client = logged_in(manager)

    made = client.post(_tokens_url(stream), _form("  Website contact form  "))

    assert made.status_code == 200
    secret = _issued_secret(made)
    token = ApiToken.objects.get(value_stream=stream)
    assert token.name == "Website contact form"
    assert token.created_by == manager
    assert secret.startswith(f"vsm_{token.prefix}_")
    # Stored: the prefix and the SHA-256 of the whole token, nothing else of it.
    assert token.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    random_part = secret.rsplit("_", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert random_part not in stored and secret not in stored
    # Never again: not on the page read later, nor in the audit row.
    again = client.get(_tokens_url(stream))
    assert secret not in again.content.decode()
    assert f"vsm_{token.prefix}_…" in again.content.decode()
    assert made["Cache-Control"].startswith("max-age=0") or "no-store" in made["Cache-Control"]
    entry = AuditEntry.objects.get(action="api_token.created")
    assert (entry.stream_id, entry.target_id, entry.actor_id) == (stream.pk, token.pk, manager.pk)
    assert secret not in str(entry.data)
    # And the secret it showed works.
    assert bearer(secret).get(reverse("api:token")).status_code == 200


def test_a_form_sent_again_makes_no_second_token(stream, manager):
    client = logged_in(manager)
    form = _form("Website contact form")
    first = client.post(_tokens_url(stream), form)
    secret = _issued_secret(first)

    again = client.post(_tokens_url(stream), form, follow=True)

    assert ApiToken.objects.count() == 1
    assert secret not in again.content.decode()
    assert "That form was sent before" in again.content.decode()
    # A new form (the page as it is shown again) makes one.
    page = client.get(_tokens_url(stream)).content.decode()
    once = re.search(r'name="once" value="([^"]+)"', page)
    assert once is not None and once[1] != form["once"]
    client.post(_tokens_url(stream), {"name": "CRM", "scope": "full", "once": once[1]})
    assert ApiToken.objects.count() == 2


def test_the_form_asks_for_the_scope_with_intake_preselected(stream, manager):
    client = logged_in(manager)
    page = client.get(_tokens_url(stream)).content.decode()

    radios = re.findall(r'<input type="radio" name="scope" value="(\w+)"[^>]*>', page)
    assert radios == ["intake", "full"]
    checked = re.findall(r'<input type="radio" name="scope" value="(\w+)"[^>]*checked', page)
    assert checked == ["intake"]
    assert "<legend>What it may do</legend>" in page

    full = client.post(_tokens_url(stream), _form("CRM sync", scope="full"))
    intake = client.post(_tokens_url(stream), _form("Website contact form"))

    assert full.status_code == intake.status_code == 200
    made = dict(ApiToken.objects.values_list("name", "scope"))
    assert made == {"CRM sync": "full", "Website contact form": "intake"}
    audited = {
        entry.target_id: entry.data
        for entry in AuditEntry.objects.filter(action="api_token.created")
    }
    by_name = dict(ApiToken.objects.values_list("name", "pk"))
    assert audited == {
        by_name["CRM sync"]: {"intake_only": False},
        by_name["Website contact form"]: {"intake_only": True},
    }
    listed = client.get(_tokens_url(stream)).content.decode()
    assert 'data-scope="full">Full: ' in listed and 'data-scope="intake">Intake: ' in listed


@pytest.mark.parametrize("scope", ["", "admin", "FULL"])
def test_a_token_needs_a_known_scope(stream, manager, scope):
    page = logged_in(manager).post(_tokens_url(stream), _form("Website", scope=scope))

    assert page.status_code == 400
    assert 'class="error"' in page.content.decode()
    with pytest.raises(InvalidInput) as refused:
        api_token_create(stream_id=stream.pk, name="Website", actor=UserActor(manager), scope=scope)
    assert refused.value.field == "scope"
    assert not ApiToken.objects.exists()


def test_a_form_without_its_once_is_refused(stream, manager):
    response = logged_in(manager).post(_tokens_url(stream), {"name": "Website"})

    assert response.status_code == 400
    assert "could not be read" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_each_token_is_its_own(stream, manager):
    first = api_token_create(stream_id=stream.pk, name="A", actor=UserActor(manager))
    second = api_token_create(stream_id=stream.pk, name="A", actor=UserActor(manager))

    assert TOKEN_FORMAT.fullmatch(first.secret) and TOKEN_FORMAT.fullmatch(second.secret)
    assert first.secret != second.secret
    assert first.token.prefix != second.token.prefix


@pytest.mark.parametrize("name", ["", "   ", "x" * 81])
def test_a_token_needs_a_name_of_a_sensible_length(stream, manager, name):
    with pytest.raises(InvalidInput) as refused:
        api_token_create(stream_id=stream.pk, name=name, actor=UserActor(manager))
    assert refused.value.field == "name"

    page = logged_in(manager).post(_tokens_url(stream), _form(name))
    assert page.status_code == 400
    assert 'class="error"' in page.content.decode()
    assert not ApiToken.objects.exists()


def test_only_who_steers_the_stream_makes_tokens(stream, member, other_stream):
    with pytest.raises(PermissionRefused):
        api_token_create(stream_id=stream.pk, name="Mine", actor=UserActor(member))
    with pytest.raises(StreamNotFound):
        api_token_create(stream_id=other_stream.pk, name="Mine", actor=UserActor(member))
    admin = UserFactory(is_superuser=True)
    made = api_token_create(stream_id=other_stream.pk, name="Admin's", actor=UserActor(admin))
    assert made.token.value_stream == other_stream
    # A token cannot make another one.
    token_actor = TokenActor(token_id=made.token.pk, stream_id=other_stream.pk)
    with pytest.raises(PermissionRefused):
        api_token_create(stream_id=other_stream.pk, name="Child", actor=token_actor)

    member_client = logged_in(member)
    assert member_client.get(_tokens_url(stream)).status_code == 403
    assert member_client.post(_tokens_url(stream), _form("Mine")).status_code in (303, 403)
    assert member_client.get(_tokens_url(other_stream)).status_code == 404
    assert ApiToken.objects.count() == 1


def test_the_manager_revokes_a_token_and_it_stops_working(stream, manager, issued):
    client = logged_in(manager)
    url = reverse("api_pages:token-revoke", args=[stream.slug, issued.token.pk])
    assert bearer(issued.secret).get(reverse("api:token")).status_code == 200

    response = client.post(url)

    assert response.status_code == 302
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert "is revoked" in str(list(get_messages(response.wsgi_request))[0])
    refused = bearer(issued.secret).get(reverse("api:token"))
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    assert AuditEntry.objects.filter(action="api_token.revoked", target_id=issued.token.pk).count()
    page = client.get(_tokens_url(stream)).content.decode()
    assert "Revoked" in page and url not in page


def test_revoke_asks_first_on_a_page_of_its_own(stream, manager, issued):
    client = logged_in(manager)
    url = reverse("api_pages:token-revoke", args=[stream.slug, issued.token.pk])
    listed = client.get(_tokens_url(stream)).content.decode()
    # The list links to the question; no form there revokes in one click.
    assert f'href="{url}"' in listed
    assert f'action="{url}"' not in listed

    asked = client.get(url)

    assert asked.status_code == 200
    html = asked.content.decode()
    assert f"Revoke “{issued.token.name}”?" in html
    assert f'<form method="post" action="{url}"' in html
    assert f'href="{_tokens_url(stream)}"' in html  # cancel
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None
    assert not AuditEntry.objects.filter(action="api_token.revoked").exists()


def test_the_question_is_not_asked_of_a_revoked_token_nor_of_others(
    stream, manager, member, issued, other_issued
):
    api_token_revoke(token_id=issued.token.pk, stream_id=stream.pk, actor=UserActor(manager))
    client = logged_in(manager)

    again = client.get(reverse("api_pages:token-revoke", args=[stream.slug, issued.token.pk]))

    assert again.status_code == 302 and again["Location"] == _tokens_url(stream)
    assert "already revoked" in str(list(get_messages(again.wsgi_request))[0])
    theirs = reverse("api_pages:token-revoke", args=[stream.slug, other_issued.token.pk])
    assert client.get(theirs).status_code == 404
    active = api_token_create(stream_id=stream.pk, name="CRM", actor=UserActor(manager))
    url = reverse("api_pages:token-revoke", args=[stream.slug, active.token.pk])
    assert logged_in(member).get(url).status_code == 403


def test_revoking_twice_changes_nothing_more(stream, manager, issued):
    first = api_token_revoke(
        token_id=issued.token.pk, stream_id=stream.pk, actor=UserActor(manager)
    )
    second = api_token_revoke(
        token_id=issued.token.pk,
        stream_id=stream.pk,
        actor=UserActor(manager),
        at=timezone.now() + timedelta(hours=1),
    )

    assert second.revoked_at == first.revoked_at
    assert AuditEntry.objects.filter(action="api_token.revoked").count() == 1


def test_a_token_is_revoked_through_its_own_stream_only(
    stream, other_stream, manager, other_issued
):
    with pytest.raises(ApiTokenNotFound):
        api_token_revoke(
            token_id=other_issued.token.pk, stream_id=stream.pk, actor=UserActor(manager)
        )
    url = reverse("api_pages:token-revoke", args=[stream.slug, other_issued.token.pk])
    response = logged_in(manager).post(url)

    assert response.status_code == 404
    other_issued.token.refresh_from_db()
    assert other_issued.token.revoked_at is None


def test_a_member_cannot_revoke(stream, member, issued):
    url = reverse("api_pages:token-revoke", args=[stream.slug, issued.token.pk])

    response = logged_in(member).post(url)

    assert response.status_code in (303, 403)
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None
    assert AuditEntry.objects.filter(refused_code="permission_refused").exists()


def test_the_last_use_is_stamped_at_most_once_a_minute(issued):
    token = issued.token
    now = timezone.now()

    assert api_token_mark_used(token=token, at=now) is True
    assert api_token_mark_used(token=token, at=now + timedelta(seconds=30)) is False
    # Another process holding the token as it was before the stamp: the database's
    # condition refuses the second write too.
    stale = ApiToken.objects.get(pk=token.pk)
    stale.last_used_at = None
    assert api_token_mark_used(token=stale, at=now + timedelta(seconds=40)) is False
    later = now + LAST_USED_RESOLUTION + timedelta(seconds=1)
    assert api_token_mark_used(token=token, at=later) is True
    token.refresh_from_db()
    assert token.last_used_at == later


def test_api_requests_stamp_the_last_use(api, issued):
    assert issued.token.last_used_at is None

    api.get(reverse("api:token"))
    issued.token.refresh_from_db()
    first = issued.token.last_used_at
    api.get(reverse("api:token"))
    issued.token.refresh_from_db()

    assert first is not None
    assert issued.token.last_used_at == first


def test_the_stream_nav_links_to_the_tokens_for_those_who_steer_it(stream, manager, member):
    link = f'href="{_tokens_url(stream)}"'
    board = reverse("boards:board", args=[stream.slug])

    assert link in logged_in(manager).get(board).content.decode()
    assert link not in logged_in(member).get(board).content.decode()


def test_the_admin_lists_tokens_read_only_and_revokes_them(stream, issued, admin_client):
    listing = admin_client.get(reverse("admin:api_apitoken_changelist"))
    assert listing.status_code == 200
    assert issued.token.prefix in listing.content.decode()
    assert '<td class="field-scope">Full: ' in listing.content.decode()
    page = admin_client.get(reverse("admin:api_apitoken_change", args=[issued.token.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert issued.token.secret_digest in html  # shown, as text
    assert 'name="secret_digest"' not in html and 'name="prefix"' not in html
    assert "Full: read and move cards" in html and 'name="scope"' not in html
    assert admin_client.get(reverse("admin:api_apitoken_add")).status_code == 403

    response = admin_client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [str(issued.token.pk)]},
    )

    assert response.status_code == 302
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_token.revoked").count() == 1


def test_the_system_may_make_tokens_with_no_person_behind_them(stream):
    made = api_token_create(stream_id=stream.pk, name="Import job", actor=TEST_SYSTEM)

    assert made.token.created_by is None
    assert AuditEntry.objects.get(action="api_token.created").actor_system == "test"
