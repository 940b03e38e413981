"""The webhooks pages: an admin or the stream's manager adds, pauses, rotates, deletes
and sends again; the secret shows once; bad input is refused with a reason; another
stream's webhooks are not found; every change leaves an audit row."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from boards.models import CardMove
from tests.factories import UserFactory
from tests.support import logged_in, new_card
from vsm.models import AuditEntry
from webhooks import services as webhook_services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    ENDPOINTS_PER_STREAM_MAX,
    webhook_deliveries_record,
    webhook_endpoint_deliver,
)

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"whsec_[A-Za-z0-9_-]{43}")
ALL_KINDS = ["enter", "move", "handoff", "won", "lost", "reopen"]


def once() -> str:
    """A form's one-time key, as a freshly shown page carries (vsm.once)."""
    return secrets.token_urlsafe(24)


def add(client, stream, url, kinds=ALL_KINDS, follow=False, **extra):
    """POST the "Add a webhook" form, as a newly shown one unless ``once`` is given."""
    extra.setdefault("once", once())
    return client.post(
        reverse("webhooks:list", args=[stream.slug]),
        {"url": url, "event_types": kinds, **extra},
        follow=follow,
    )


def rotate_form(hours: str, key: str | None = None) -> dict[str, str]:
    return {"keep_previous_hours": hours, "once": key or once()}


ONCE_FIELD = re.compile(r'<input type="hidden" name="once" value="([^"]+)"')


def form_once(page, action: str) -> str:
    """The ``once`` of the form on ``page`` that posts to ``action``."""
    html = page.content.decode()
    form = html[html.index(f'action="{action}"') :]
    match = ONCE_FIELD.search(form[: form.index("</form>")])
    assert match, f"the form to {action} carries no once"
    return match.group(1)


def audit_actions(stream) -> list[str]:
    return list(
        AuditEntry.objects.filter(stream_id=stream.pk, action__startswith="webhook")
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_the_manager_adds_a_webhook_and_sees_its_secret_once(stream, manager, receiver):
    client = logged_in(manager)

    answer = add(client, stream, receiver.url, kinds=["won", "lost"], description="CRM")

    assert answer.status_code == 201
    endpoint = WebhookEndpoint.objects.get(value_stream=stream)
    shown = SECRET.findall(answer.content.decode())
    assert shown == [endpoint.secret]
    assert (endpoint.url, endpoint.kinds, endpoint.description) == (
        receiver.url,
        ["won", "lost"],
        "CRM",
    )
    assert endpoint.created_by == manager and endpoint.is_active
    assert "no-store" in answer["Cache-Control"]
    for page in (
        client.get(reverse("webhooks:list", args=[stream.slug])),
        client.get(reverse("webhooks:endpoint", args=[stream.slug, endpoint.pk])),
    ):
        assert page.status_code == 200
        assert endpoint.secret not in page.content.decode()
        assert endpoint.secret_fingerprint in page.content.decode()
    assert audit_actions(stream) == ["webhook.created"]
    entry = AuditEntry.objects.get(action="webhook.created")
    assert (entry.actor_id, entry.target_id) == (manager.pk, endpoint.pk)


@pytest.mark.parametrize(
    ("url", "kinds", "reason"),
    [
        ("ftp://hooks.example.com/in", ALL_KINDS, "starts with https:// or http://"),
        ("javascript:alert(1)", ALL_KINDS, "starts with https:// or http://"),
        ("https://", ALL_KINDS, "not a URL VSM can send to"),
        ("https://user:secret@hooks.example.com/", ALL_KINDS, "no user name or password"),
        ("http://localhost:8000/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://127.0.0.1/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://169.254.169.254/latest/meta-data/", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://10.1.2.3/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://[::1]/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://[::ffff:192.168.0.1]/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        # IPv6 forms that lead to an internal IPv4 address: NAT64, 6to4, Teredo.
        ("http://[64:ff9b::7f00:1]/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://[64:ff9b::a9fe:a9fe]/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://[2002:7f00:1::1]/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://[2002:c0a8:1::1]/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/in", ALL_KINDS, "inside VSM"),
        ("http://[::a00:1]/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("http://redis:6379/", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("https://crm.internal/in", ALL_KINDS, "inside VSM&#x27;s own network"),
        ("https://hooks.example.com/" + "a" * 2000, ALL_KINDS, "at most 2000 characters"),
        ("https://hooks.example.com/in", [], "Choose at least one kind of event"),
        ("https://hooks.example.com/in", ["shipped"], "Select a valid choice"),
    ],
)
def test_a_bad_webhook_is_refused_with_the_reason_and_what_was_typed(
    stream, manager, settings, url, kinds, reason
):
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False

    answer = add(logged_in(manager), stream, url, kinds=kinds)

    assert answer.status_code == 400
    assert reason in answer.content.decode()
    assert not WebhookEndpoint.objects.exists()
    if len(url) < 100 and "user:secret" not in url:
        assert f'value="{url}"' in answer.content.decode().replace("&amp;", "&")


def test_a_public_https_url_is_accepted_as_typed_with_its_host_in_lower_case(
    stream, manager, settings
):
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False

    answer = add(logged_in(manager), stream, "  HTTPS://Hooks.Example.COM:8443/In?x=1  ")

    assert answer.status_code == 201
    assert WebhookEndpoint.objects.get().url == "https://hooks.example.com:8443/In?x=1"


def test_a_stream_has_a_bounded_number_of_webhooks(stream, manager, receiver):
    client = logged_in(manager)
    for n in range(ENDPOINTS_PER_STREAM_MAX):
        assert add(client, stream, f"{receiver.url}?n={n}").status_code == 201

    answer = add(client, stream, f"{receiver.url}?n=more")

    assert answer.status_code == 409
    assert f"at most {ENDPOINTS_PER_STREAM_MAX} webhooks" in answer.content.decode()
    assert WebhookEndpoint.objects.count() == ENDPOINTS_PER_STREAM_MAX


def test_a_member_may_not_manage_webhooks_and_sees_no_link(stream, member, webhook):
    endpoint = webhook(stream)
    client = logged_in(member)

    listing = client.get(reverse("webhooks:list", args=[stream.slug]))
    posted = add(client, stream, "https://hooks.example.com/in", follow=True)
    board = client.get(reverse("boards:board", args=[stream.slug]))

    assert listing.status_code == 403
    assert posted.redirect_chain[0][1] == 303  # back, with the refusal's message
    assert "Only an admin or the value stream manager may" in posted.content.decode()
    assert WebhookEndpoint.objects.get() == endpoint
    assert reverse("webhooks:list", args=[stream.slug]) not in board.content.decode()
    manager_board = logged_in(stream.manager).get(reverse("boards:board", args=[stream.slug]))
    assert reverse("webhooks:list", args=[stream.slug]) in manager_board.content.decode()


def test_another_streams_webhooks_are_not_found(stream, other_stream, webhook):
    """The manager of one stream reaches none of another's: 404 as for nothing at all."""
    theirs = webhook(other_stream)
    new_card(other_stream, other_stream.manager)
    webhook_deliveries_record(endpoint_id=theirs.pk)
    delivery = WebhookDelivery.objects.get(endpoint=theirs)
    client = logged_in(stream.manager)

    def mine(name: str, *more: int) -> str:  # their webhook's id under my own stream
        return reverse(f"webhooks:{name}", args=[stream.slug, theirs.pk, *more])

    pages = [
        client.get(reverse("webhooks:list", args=[other_stream.slug])),
        client.get(reverse("webhooks:endpoint", args=[other_stream.slug, theirs.pk])),
        client.post(
            reverse("webhooks:endpoint-delete", args=[other_stream.slug, theirs.pk]),
            {"confirm": "on"},
        ),
        client.get(mine("endpoint")),
        client.post(mine("endpoint-active"), {"active": "0"}),
        client.post(mine("endpoint-rotate"), rotate_form("0")),
        client.post(mine("endpoint-delete"), {"confirm": "on"}),
        client.post(mine("delivery-retry", delivery.pk)),
    ]

    assert [page.status_code for page in pages] == [404] * len(pages)
    assert all(theirs.url not in page.content.decode() for page in pages)
    unchanged = WebhookEndpoint.objects.get(pk=theirs.pk)
    assert (unchanged.is_active, unchanged.secret) == (True, theirs.secret)
    assert audit_actions(other_stream) == ["webhook.created"]


def test_an_admin_manages_any_streams_webhooks(stream, receiver):
    admin = UserFactory(is_superuser=True, is_staff=True)

    assert add(logged_in(admin), stream, receiver.url).status_code == 201


def test_pause_and_resume(stream, manager, webhook):
    endpoint = webhook(stream)
    client = logged_in(manager)
    url = reverse("webhooks:endpoint-active", args=[stream.slug, endpoint.pk])
    page = reverse("webhooks:endpoint", args=[stream.slug, endpoint.pk])

    paused = client.post(url, {"active": "0"})
    assert (paused.status_code, paused["Location"]) == (303, page)
    assert not WebhookEndpoint.objects.get().is_active
    assert "Paused" in client.get(page).content.decode()

    nonsense = client.post(url, {"active": "maybe"}, headers={"Referer": page})
    assert nonsense.status_code == 303
    assert not WebhookEndpoint.objects.get().is_active

    assert client.post(url, {"active": "1"}).status_code == 303
    assert WebhookEndpoint.objects.get().is_active
    assert audit_actions(stream) == ["webhook.created", "webhook.paused", "webhook.resumed"]


def test_a_rotated_secret_shows_once_and_the_old_one_signs_for_the_overlap_only(
    stream, manager, receiver, webhook
):
    endpoint = webhook(stream)
    old = endpoint.secret
    client = logged_in(manager)
    rotate = reverse("webhooks:endpoint-rotate", args=[stream.slug, endpoint.pk])

    answer = client.post(rotate, rotate_form("24"))

    rotated = WebhookEndpoint.objects.get()
    assert answer.status_code == 200
    assert SECRET.findall(answer.content.decode()) == [rotated.secret] and rotated.secret != old
    assert rotated.previous_secret == old
    expected_end = timezone.now() + timedelta(hours=24)
    assert abs(rotated.previous_secret_expires_at - expected_end) < timedelta(minutes=1)
    receiver.secrets = [old]  # a receiver not switched over yet
    new_card(stream, manager)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    signed = receiver.wait_for(1)[0]
    assert signed.verified and signed.headers["x-vsm-signature"].count("v1=") == 2

    client.post(rotate, rotate_form("0"))
    new_card(stream, manager, person_name="Bo Berg")
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)

    unsigned = receiver.wait_for(2)[1]
    assert not unsigned.verified and unsigned.headers["x-vsm-signature"].count("v1=") == 1
    assert WebhookEndpoint.objects.get().previous_secret == ""
    assert audit_actions(stream).count("webhook.secret_rotated") == 2
    current = WebhookEndpoint.objects.get().secret
    bad = client.post(rotate, rotate_form("9999"), follow=True)
    assert bad.redirect_chain == [
        (reverse("webhooks:endpoint", args=[stream.slug, endpoint.pk]), 303)
    ]
    assert "Say how long the old secret keeps signing." in bad.content.decode()
    assert WebhookEndpoint.objects.get().secret == current


def test_delete_takes_the_log_with_it_and_the_moves_stay(stream, manager, webhook):
    endpoint = webhook(stream)
    new_card(stream, manager)
    webhook_deliveries_record(endpoint_id=endpoint.pk)

    answer = logged_in(manager).post(
        reverse("webhooks:endpoint-delete", args=[stream.slug, endpoint.pk]), {"confirm": "on"}
    )

    assert (answer.status_code, answer["Location"]) == (
        303,
        reverse("webhooks:list", args=[stream.slug]),
    )
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert CardMove.objects.filter(value_stream=stream).count() == 1
    assert AuditEntry.objects.get(action="webhook.deleted").data == {"deliveries": 1}


def test_a_dead_delivery_is_sent_again_from_the_log(stream, manager, receiver, webhook):
    endpoint = webhook(stream)
    new_card(stream, manager)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DEAD, attempts=6, next_attempt_at=None, last_status_code=500
    )
    client = logged_in(manager)
    page = reverse("webhooks:endpoint", args=[stream.slug, endpoint.pk])
    log = client.get(page, {"status": "dead"})
    retry = reverse("webhooks:delivery-retry", args=[stream.slug, endpoint.pk, delivery.pk])
    assert retry in log.content.decode()
    assert client.get(page, {"status": "succeeded"}).content.decode().count(retry) == 0
    assert client.get(page, {"status": "nonsense"}).status_code == 200

    answer = client.post(retry)

    assert (answer.status_code, answer["Location"]) == (303, page)
    again = WebhookDelivery.objects.get()
    assert (again.status, again.attempts) == (DeliveryStatus.PENDING, 0)
    assert again.next_attempt_at <= timezone.now()
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED
    refused = client.post(retry, headers={"Referer": "http://testserver" + page})
    assert refused.status_code == 303
    assert "was delivered" in client.get(page).content.decode()
    assert audit_actions(stream) == ["webhook.created", "webhook_delivery.retried"]


@pytest.mark.parametrize("url", ["http://[2002:808:808::1]/in", "http://[64:ff9b::808:808]/in"])
def test_an_ipv6_form_of_a_public_ipv4_address_is_accepted(stream, manager, settings, url):
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False

    assert add(logged_in(manager), stream, url).status_code == 201


def test_the_add_form_sent_again_adds_nothing(stream, manager, receiver):
    """The answer that showed the secret, reloaded: the browser sends the form again."""
    client = logged_in(manager)
    listing = reverse("webhooks:list", args=[stream.slug])
    key = form_once(client.get(listing), listing)

    first = add(client, stream, receiver.url, once=key)
    again = add(client, stream, receiver.url, once=key, follow=True)

    assert first.status_code == 201
    assert again.redirect_chain == [(listing, 303)]
    page = again.content.decode()
    assert "That form was sent before: its webhook was added then" in page
    endpoint = WebhookEndpoint.objects.get()
    assert SECRET.findall(page) == [] and endpoint.secret not in page
    assert form_once(again, listing) != key  # the page offers a new form
    assert audit_actions(stream) == ["webhook.created"]


def test_a_refused_form_may_be_sent_again_corrected(stream, manager, receiver, settings):
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False
    client = logged_in(manager)
    key = once()

    refused = add(client, stream, "http://10.0.0.7/hook", once=key)
    corrected = add(client, stream, "https://hooks.example.com/in", once=key)

    assert refused.status_code == 400
    assert form_once(refused, reverse("webhooks:list", args=[stream.slug])) == key
    assert corrected.status_code == 201
    assert WebhookEndpoint.objects.get().url == "https://hooks.example.com/in"


def test_a_form_from_before_the_once_key_is_refused_and_offered_anew(stream, manager):
    client = logged_in(manager)
    listing = reverse("webhooks:list", args=[stream.slug])

    answer = client.post(listing, {"url": "https://hooks.example.com/in", "event_types": ["won"]})

    assert answer.status_code == 400
    assert "This form is out of date: nothing was saved." in answer.content.decode()
    assert 'value="https://hooks.example.com/in"' in answer.content.decode()
    assert len(form_once(answer, listing)) >= 16  # sent again as shown, it goes through
    assert not WebhookEndpoint.objects.exists()
    resent = add(client, stream, "https://hooks.example.com/in", once=form_once(answer, listing))
    assert resent.status_code == 201


def test_a_stream_has_one_active_webhook_per_url(stream, manager, settings):
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False
    client = logged_in(manager)
    assert add(client, stream, "https://hooks.example.com/in").status_code == 201
    first = WebhookEndpoint.objects.get()

    twin = add(client, stream, "HTTPS://Hooks.Example.com/in")  # the same, written otherwise

    assert twin.status_code == 409
    assert "already has an active webhook to that URL" in twin.content.decode()
    assert 'value="HTTPS://Hooks.Example.com/in"' in twin.content.decode()
    assert WebhookEndpoint.objects.count() == 1
    # Another path is another receiver; paused, the first one leaves its URL free.
    assert add(client, stream, "https://hooks.example.com/other").status_code == 201
    pause = reverse("webhooks:endpoint-active", args=[stream.slug, first.pk])
    assert client.post(pause, {"active": "0"}).status_code == 303
    assert add(client, stream, "https://hooks.example.com/in").status_code == 201
    # ... until it is resumed: then two would send each event twice.
    resumed = client.post(pause, {"active": "1"}, follow=True)
    assert "already has an active webhook to that URL" in resumed.content.decode()
    assert not WebhookEndpoint.objects.get(pk=first.pk).is_active


def test_the_database_holds_one_active_webhook_per_url(stream, webhook):
    endpoint = webhook(stream)
    twin = WebhookEndpoint(
        value_stream=stream, url=endpoint.url, event_types="won", secret="whsec_x"
    )

    with pytest.raises(IntegrityError, match="(?i)unique"), transaction.atomic():
        twin.save()
    twin.is_active = False
    twin.save()
    assert WebhookEndpoint.objects.filter(url=endpoint.url).count() == 2


def test_the_rotate_answer_reloaded_rotates_nothing(stream, manager, receiver, webhook):
    """Reloading the page that showed the new secret sends the form again: the secret
    just copied keeps working."""
    endpoint = webhook(stream)
    client = logged_in(manager)
    page = reverse("webhooks:endpoint", args=[stream.slug, endpoint.pk])
    rotate = reverse("webhooks:endpoint-rotate", args=[stream.slug, endpoint.pk])
    key = form_once(client.get(page), rotate)

    shown = client.post(rotate, rotate_form("0", key))
    copied = SECRET.findall(shown.content.decode())
    again = client.post(rotate, rotate_form("0", key), follow=True)

    assert copied == [WebhookEndpoint.objects.get().secret]
    assert again.redirect_chain == [(page, 303)]
    assert "the secret was rotated then" in again.content.decode()
    assert SECRET.findall(again.content.decode()) == []
    assert WebhookEndpoint.objects.get().secret == copied[0]
    assert audit_actions(stream).count("webhook.secret_rotated") == 1
    receiver.secrets = copied  # the receiver switched to the secret it was shown
    new_card(stream, manager)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    assert receiver.wait_for(1)[0].verified
    # A form shown afresh rotates again.
    assert form_once(again, rotate) != key
    client.post(rotate, rotate_form("0", form_once(again, rotate)))
    assert WebhookEndpoint.objects.get().secret != copied[0]


def test_delete_asks_for_confirmation(stream, manager, webhook):
    endpoint = webhook(stream)
    client = logged_in(manager)
    page = reverse("webhooks:endpoint", args=[stream.slug, endpoint.pk])
    delete = reverse("webhooks:endpoint-delete", args=[stream.slug, endpoint.pk])
    html = client.get(page).content.decode()
    assert 'name="confirm"' in html[html.index(f'action="{delete}"') :]

    unconfirmed = client.post(delete, follow=True)

    assert unconfirmed.redirect_chain == [(page, 303)]
    assert "nothing was deleted" in unconfirmed.content.decode()
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert "webhook.deleted" not in audit_actions(stream)
    assert client.post(delete, {"confirm": "on"}).status_code == 303
    assert not WebhookEndpoint.objects.exists()


def test_a_form_whose_sending_failed_may_be_sent_again(stream, manager, monkeypatch):
    """The database went away mid-request: nothing was added, so the form sent again
    adds the webhook rather than being told it was sent before."""
    real = webhook_services.webhook_endpoint_create

    def fails(**kwargs):
        raise RuntimeError("the database went away")

    client = logged_in(manager)
    key = once()
    monkeypatch.setattr(webhook_services, "webhook_endpoint_create", fails)
    with pytest.raises(RuntimeError):
        add(client, stream, "https://hooks.example.com/in", once=key)
    monkeypatch.setattr(webhook_services, "webhook_endpoint_create", real)

    assert add(client, stream, "https://hooks.example.com/in", once=key).status_code == 201
    assert WebhookEndpoint.objects.count() == 1
