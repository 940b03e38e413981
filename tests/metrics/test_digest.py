"""The weekly digest e-mail: who receives it, what it says (worked out by hand on small
scripted streams and on the oracle's stream), when it is skipped, that a week goes to an
address once however often the task runs, the chain from the Monday snapshot, and the
dashboard's toggle.

Scripted stream (the ``stream`` fixture, "Industrial pumps"; 09:00 UTC each): the week
before (Monday 17 Nov 2025) P1 (1,000) enters on the 18th and moves to Information on
the 20th, P2 (2,000) enters on the 19th; the reviewed week (Monday 24 Nov) P2 moves to
Information on the 25th and P3 (500) enters on the 26th. Nothing closes, so no weekly
series has a point to signal. ``won_in_week`` adds P1 won on 27 Nov. The stream's first
event is P1's arrival: the digest reads its weeks from the week of 17 Nov (two weeks
for the reviewed one), as the weekly review does; ``quiet_since_september`` adds P0
(100), in the stream since Monday 1 Sep, so the reviewed week has its 12 weeks.
"""

from __future__ import annotations

import datetime
import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.test import Client
from django.urls import resolve, reverse

from boards.models import Outcome
from boards.services import card_set_blocked
from metrics import services, tasks
from metrics.models import DigestDelivery, DigestSubscription, WeeklySnapshot
from metrics.selectors import stream_metrics_compute
from metrics.selectors.digest import (
    digest_recipients,
    digest_subscription_state,
    oldest_cards,
    week_bounds,
    weekly_digest_get,
)
from metrics.selectors.query import stream_first_week
from metrics.selectors.review import week_query
from metrics.services import stream_metrics_advance
from tests.factories import MembershipFactory, UserFactory
from tests.metrics.scripted import Board
from tests.metrics.test_oracle import board  # noqa: F401 (the oracle's stream)
from tests.support import SALES, as_actor, logged_in
from vsm.access import StreamNotFound
from vsm.errors import PermissionRefused
from vsm.models import Channel, Role

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
WEEK = datetime.date(2025, 11, 24)
WEEK_BEFORE = datetime.date(2025, 11, 17)
QUIET_WEEK = datetime.date(2025, 11, 3)
BASE_URL = "https://vsm.example.com"


def at(day: int, month: int = 11) -> datetime.datetime:
    return datetime.datetime(2025, month, day, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.VSM_BASE_URL = BASE_URL


def script(stream, manager, *, since_september: bool = False) -> Board:
    channel = Channel.objects.create(value_stream=stream, name="Referral")
    b = Board(stream, manager)
    if since_september:
        b.enter("P0", channel, 100, at(1, 9))
    b.enter("P1", channel, 1000, at(18))
    b.enter("P2", channel, 2000, at(19))
    b.move("P1", "Information", at(20))
    b.move("P2", "Information", at(25))
    b.enter("P3", channel, 500, at(26))
    stream_metrics_advance(stream_id=stream.pk)
    return b


@pytest.fixture
def scripted(stream, manager) -> Board:
    return script(stream, manager)


@pytest.fixture
def won_in_week(scripted) -> Board:
    scripted.close("P1", Outcome.WON, at(27))
    stream_metrics_advance(stream_id=scripted.stream.pk)
    return scripted


@pytest.fixture
def quiet_since_september(stream, manager) -> Board:
    b = script(stream, manager, since_september=True)
    b.close("P1", Outcome.WON, at(27))
    stream_metrics_advance(stream_id=stream.pk)
    return b


def subscribe(user, stream) -> None:
    services.digest_subscription_set(actor=as_actor(user), stream_id=stream.pk, subscribed=True)


def send(stream, week: datetime.date = WEEK) -> int:
    return services.weekly_digest_send(stream_id=stream.pk, week_start=week)


def parts(message) -> tuple[str, str]:
    """The text body and the HTML alternative of a sent message."""
    (html, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    return message.body, html


def recipients() -> list[str]:
    return sorted(address for message in mail.outbox for address in message.to)


# Who receives it


def test_the_manager_and_the_members_who_asked_receive_it_nobody_else(
    scripted, stream, manager, team, member, user
):
    asking = MembershipFactory(team=team).user
    DigestSubscription.objects.create(user=user, value_stream=stream)  # an outsider's row

    subscribe(asking, stream)
    sent = send(stream)

    assert sent == 2
    assert recipients() == sorted([manager.email, asking.email])
    assert all(len(message.to) == 1 for message in mail.outbox)
    assert set(
        DigestDelivery.objects.filter(value_stream=stream, week_start=WEEK).values_list(
            "address", "user_id"
        )
    ) == {(manager.email, manager.pk), (asking.email, asking.pk)}


def test_an_address_gets_one_message_and_users_without_one_none(stream, manager, team):
    same_as_manager = MembershipFactory(team=team, user__email=manager.email.upper()).user
    no_address = MembershipFactory(team=team, user__email="").user
    gone = MembershipFactory(team=team, user__is_active=False).user
    left = MembershipFactory(team=team).user
    for user in (same_as_manager, no_address, gone, left):
        subscribe(user, stream)
    left.memberships.all().delete()  # left the team: the row stays, and is ignored

    assert [(r.user_id, r.address) for r in digest_recipients(stream)] == [
        (manager.pk, manager.email)
    ]


def test_the_manager_receives_it_without_asking_and_members_can_stop_it(stream, manager, member):
    assert services.digest_subscription_set(
        actor=as_actor(manager), stream_id=stream.pk, subscribed=False
    )
    assert services.digest_subscription_set(
        actor=as_actor(member), stream_id=stream.pk, subscribed=True
    )
    assert services.digest_subscription_set(
        actor=as_actor(member), stream_id=stream.pk, subscribed=True
    )
    assert DigestSubscription.objects.filter(user=member, value_stream=stream).count() == 1

    assert not services.digest_subscription_set(
        actor=as_actor(member), stream_id=stream.pk, subscribed=False
    )

    assert not DigestSubscription.objects.exists()
    assert [r.user_id for r in digest_recipients(stream)] == [manager.pk]


def test_only_members_may_ask_for_it(stream, user):
    admin = UserFactory(is_superuser=True, is_staff=True)
    # An admin sees every stream but is in none of its teams; an outsider sees nothing.
    with pytest.raises(PermissionRefused, match="Only members"):
        services.digest_subscription_set(
            actor=as_actor(admin), stream_id=stream.pk, subscribed=True
        )
    with pytest.raises(StreamNotFound):
        services.digest_subscription_set(actor=as_actor(user), stream_id=stream.pk, subscribed=True)
    assert not DigestSubscription.objects.exists()


# What it says


def test_text_and_html_give_the_week_against_the_week_before(scripted, stream, manager):
    assert send(stream) == 1
    (message,) = mail.outbox
    text, html = parts(message)

    assert message.subject == "Industrial pumps: weekly digest, week of 24 Nov 2025"
    assert message.from_email == "VSM <vsm@localhost>"
    summary = text.splitlines()[0]
    assert summary.startswith("Industrial pumps, week of 24 Nov: 0 won (0), ")
    assert summary.endswith(", no signal")
    # Arrivals: P3 in the week, P1 and P2 the week before. WIP on the Sundays: 3 and 2.
    assert "- Arrivals: 1 (week before 2, −1)" in text
    assert "- WIP: 3 (week before 2, +1)" in text
    assert "- Won: 0 (week before 0, no change)" in text
    assert "- Lead time p50: – (week before –, n/a)" in text
    assert "- None: every weekly number stayed within its natural process limits." in text
    review = f"{BASE_URL}/streams/{stream.slug}/review/2025-11-24/"
    assert f"Review the week: {review}" in text
    # The link is the weekly review's page of that week.
    page = resolve(review.removeprefix(BASE_URL))
    assert page.view_name == "metrics:review"
    assert page.kwargs == {"stream_slug": stream.slug, "week": WEEK}
    assert f"Dashboard: {BASE_URL}/streams/{stream.slug}/dashboard/" in text
    assert "as the stream's manager" in text
    for cells in (("Arrivals", "1", "2", "−1"), ("WIP", "3", "2", "+1")):
        label, value, previous, change = cells
        row = html.split(f"<td>{label}</td>", 1)[1].split("</tr>", 1)[0]
        assert [value, previous, change] == [
            cell.rsplit(">", 1)[1] for cell in row.split("</td>")[:3]
        ]
    assert f'href="{review}"' in html
    assert "None: every weekly number stayed within its natural process limits." in html


def test_a_new_stream_s_first_win_is_no_signal(won_in_week, stream):
    # The stream's first event is on 18 Nov: its weeks are those of 17 and 24 Nov, won 0
    # then 1. Mean 0.5, moving range 1: limits 0.5 +/- 2.66, moving-range limit 3.27: no
    # signal. (Counted over 12 weeks, the ten before the stream existed as zeros, the win
    # was "above the upper limit" and "a bigger jump than chance explains".)
    digest = weekly_digest_get(stream, WEEK)
    assert digest.signals == []
    assert "1 won (1,000)" in digest.summary and digest.summary.endswith(", no signal")


def test_a_win_after_eleven_quiet_weeks_is_a_signal(quiet_since_september, stream):
    # P0 has been in the stream since 1 Sep: the window holds its 12 weeks, 8 Sep to 24
    # Nov. Won by week: eleven 0s, then 1. Mean 1/12; average moving range 1/11; upper
    # limit 1/12 + 2.66/11 = 0.325 (0.33), moving-range limit 3.268/11 = 0.297 (0.3): the
    # week is above both. (The eighth 0 in a row is a signal too, on a week long past.)
    assert send(stream) == 1
    text, html = parts(mail.outbox[0])

    assert text.splitlines()[0].startswith("Industrial pumps, week of 24 Nov: 1 won (1,000), ")
    assert text.splitlines()[0].endswith(", 2 signals")
    signals = [
        "Deals won: 1 in the week, above its upper natural process limit (0.3).",
        "Deals won: 1 in the week, a bigger jump from the week before than chance explains "
        "(limit 0.3).",
    ]
    for signal in signals:
        assert f"- {signal}" in text
        assert f'<li style="margin-bottom:4px;">{signal}</li>' in html
    assert "- Won value: 1,000 (week before 0, +1,000)" in text
    assert "- Throughput (closed): 1 (week before 0, +1)" in text


def test_user_content_is_escaped_in_the_html_part(scripted, stream):
    stream.name = "Pumps <b>& valves</b>"
    stream.save()

    send(stream)
    text, html = parts(mail.outbox[0])

    assert "Pumps &lt;b&gt;&amp; valves&lt;/b&gt;" in html and "<b>&" not in html
    assert text.startswith("Pumps <b>& valves</b>, week of")


def test_the_three_oldest_open_cards_each_against_their_cycle_s_p85(won_in_week, stream):
    # P4 and P5 enter in the reviewed week, P6 after it (2 Dec). Collaboration's cycle time:
    # P1's 9 days (18 to 27 Nov), its 85th percentile. At the week's end (1 Dec 00:00) P2
    # has been in the cycle 11.625 days (since 19 Nov: its move to Information on 25 Nov
    # stays in it), P3 4.625, P4 2.625, P5 1.625; P6 was not there yet.
    won_in_week.enter("P4", None, 10, at(28))
    won_in_week.enter("P5", None, 10, at(29))
    won_in_week.enter("P6", None, 10, at(2, 12))
    stream_metrics_advance(stream_id=stream.pk)

    send(stream)
    text, html = parts(mail.outbox[0])

    url = f"{BASE_URL}/streams/{stream.slug}/cards/"
    cards = won_in_week.cards
    oldest = text.split("Oldest cards\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert oldest == [
        "- Prospect P2, in Collaboration / Information, 11.6 days in its cycle, past its "
        f"cycle's 85th percentile (9.0 days): {url}{cards['P2']}/",
        "- Prospect P3, in Collaboration / Data, 4.6 days in its cycle, within its cycle's "
        f"85th percentile (9.0 days): {url}{cards['P3']}/",
        "- Prospect P4, in Collaboration / Data, 2.6 days in its cycle, within its cycle's "
        f"85th percentile (9.0 days): {url}{cards['P4']}/",
        "1 open card is older than its cycle's 85th percentile.",
    ]
    assert "Prospect P5" not in html and "Prospect P6" not in html
    assert f'<a href="{url}{cards["P3"]}/" style="color:#0969da;">Prospect P3</a>' in html


def test_the_oldest_cards_read_in_one_query(won_in_week, stream, django_assert_num_queries):
    query = week_query(stream, WEEK, first_week=stream_first_week(stream))
    document = stream_metrics_compute(query)
    with django_assert_num_queries(1):
        listed = oldest_cards(stream, document, end=week_bounds(WEEK)[1])
    assert [card.name for card in listed] == ["Prospect P2", "Prospect P3"]


def test_cards_that_entered_their_cycle_after_the_week_are_left_out(scripted, stream):
    # The week before (ending Mon 24 Nov 00:00): P1 (since 18 Nov, in Information since
    # the 20th) and P2 (since 19 Nov; it moved to Information on the 25th, after the
    # week: its column is today's); P3 came on the 26th. No card finished the cycle yet.
    digest = weekly_digest_get(stream, WEEK_BEFORE)
    assert [
        (card.name, card.where, card.age_days, card.against_p85) for card in digest.oldest_cards
    ] == [
        (
            "Prospect P1",
            "in Collaboration / Information",
            5.62,
            "its cycle has no 85th percentile yet",
        ),
        (
            "Prospect P2",
            "now in Collaboration / Information",
            4.62,
            "its cycle has no 85th percentile yet",
        ),
    ]
    assert digest.aging_text == "No open card is older than its cycle's 85th percentile."


# When it is skipped


def test_a_week_in_which_nothing_happened_sends_nothing(scripted, stream):
    assert weekly_digest_get(stream, QUIET_WEEK) is None
    assert send(stream, QUIET_WEEK) == 0
    assert mail.outbox == []
    assert not DigestDelivery.objects.exists()


def test_a_card_blocked_in_an_otherwise_quiet_week_is_news(scripted, stream, manager):
    blocked_week = datetime.date(2025, 12, 1)
    assert weekly_digest_get(stream, blocked_week) is None
    card_set_blocked(
        card_id=scripted.cards["P3"],
        blocked=True,
        reason="Waits for a budget",
        actor=as_actor(manager),
        at=at(2, 12),
    )

    assert send(stream, blocked_week) == 1


def test_a_week_starts_on_a_monday(scripted, stream):
    with pytest.raises(ValueError, match="Monday"):
        send(stream, WEEK + datetime.timedelta(days=1))


# Sent once per week and address


def test_sending_twice_sends_once(scripted, stream, member):
    subscribe(member, stream)
    assert send(stream) == 2

    assert send(stream) == 0
    assert len(mail.outbox) == 2
    assert DigestDelivery.objects.filter(value_stream=stream, week_start=WEEK).count() == 2
    # Another week is another digest.
    assert send(stream, WEEK_BEFORE) == 2


def test_a_failed_message_is_sent_by_the_retry_and_the_others_are_not_again(
    scripted, stream, manager, member
):
    subscribe(member, stream)
    real = EmailBackend.send_messages

    def member_fails(self, messages):
        if messages[0].to == [member.email]:
            raise smtplib.SMTPServerDisconnected("lost the server")
        return real(self, messages)

    with (
        mock.patch.object(EmailBackend, "send_messages", member_fails),
        pytest.raises(smtplib.SMTPServerDisconnected),
    ):
        send(stream)
    assert recipients() == [manager.email]
    assert list(DigestDelivery.objects.values_list("address", flat=True)) == [manager.email]

    assert send(stream) == 1
    assert recipients() == sorted([manager.email, member.email])


def test_an_address_a_concurrent_run_delivered_meanwhile_is_skipped(
    scripted, stream, manager, member
):
    # Another run delivers the member's message while this one sends the manager's:
    # the row, checked again in the transaction that sends, keeps it from going twice.
    subscribe(member, stream)
    real = EmailBackend.send_messages

    def concurrent_run_delivers_the_member(self, messages):
        if messages[0].to == [manager.email]:
            DigestDelivery.objects.create(
                value_stream=stream,
                week_start=WEEK,
                address=member.email,
                sent_at=datetime.datetime.now(UTC),
            )
        return real(self, messages)

    with mock.patch.object(EmailBackend, "send_messages", concurrent_run_delivers_the_member):
        assert send(stream) == 1

    assert recipients() == [manager.email]


def test_a_refused_address_is_skipped_and_the_others_are_sent(scripted, stream, manager, member):
    subscribe(member, stream)
    real = EmailBackend.send_messages

    def manager_refused(self, messages):
        if messages[0].to == [manager.email]:
            raise smtplib.SMTPRecipientsRefused({manager.email: (550, b"no such user")})
        return real(self, messages)

    with mock.patch.object(EmailBackend, "send_messages", manager_refused):
        assert send(stream) == 1

    assert recipients() == [member.email]
    assert list(DigestDelivery.objects.values_list("address", flat=True)) == [member.email]


# The task chain


@pytest.mark.usefixtures("eager_tasks")
def test_the_monday_snapshot_sends_the_digest_of_the_week_before_after_commit(
    scripted, stream, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tasks.weekly_snapshot.delay(stream.pk, "2025-12-01")
    assert WeeklySnapshot.objects.filter(value_stream=stream, week_start="2025-12-01").exists()
    assert len(callbacks) == 1 and mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        tasks.weekly_snapshot.delay(stream.pk, "2025-12-01")

    (message,) = mail.outbox
    assert message.to == [manager.email]
    assert "week of 24 Nov 2025" in message.subject
    assert list(DigestDelivery.objects.values_list("week_start", flat=True)) == [WEEK]


@pytest.fixture
def failures_not_raised():
    """Eager tasks retry instead of raising to the caller, as on a worker."""
    conf = tasks.weekly_digest.app.conf
    saved = conf["task_eager_propagates"]
    conf["task_eager_propagates"] = False
    yield
    conf["task_eager_propagates"] = saved


@pytest.mark.usefixtures("eager_tasks", "failures_not_raised")
def test_the_digest_task_retries_when_the_mail_server_fails(scripted, stream, manager):
    real = EmailBackend.send_messages
    calls = []

    def fails_once(self, messages):
        calls.append(messages[0].to)
        if len(calls) == 1:
            raise smtplib.SMTPConnectError(421, "try again later")
        return real(self, messages)

    with mock.patch.object(EmailBackend, "send_messages", fails_once):
        result = tasks.weekly_digest.apply((stream.pk, WEEK.isoformat()))

    assert result.successful()
    assert result.result == {"stream_id": stream.pk, "week_start": "2025-11-24", "sent": 1}
    assert calls == [[manager.email], [manager.email]]
    assert recipients() == [manager.email]


@pytest.mark.usefixtures("eager_tasks")
def test_a_failing_digest_does_not_fail_the_snapshot(
    scripted, stream, django_capture_on_commit_callbacks, caplog
):
    with (
        mock.patch.object(services, "weekly_digest_send", side_effect=RuntimeError("broken")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = tasks.weekly_snapshot.delay(stream.pk, "2025-12-01")

    assert result.successful()
    assert WeeklySnapshot.objects.filter(value_stream=stream, week_start="2025-12-01").exists()
    assert f"Weekly digest of stream {stream.pk}, week of 2025-11-24: not sent" in caplog.text


# The dashboard's toggle


def toggle_url(stream) -> str:
    return reverse("metrics:digest-subscription", args=[stream.slug])


def dashboard_url(stream) -> str:
    return reverse("metrics:dashboard", args=[stream.slug])


def test_a_member_asks_for_the_digest_and_stops_it(stream, member):
    client = logged_in(member)
    assert "E-mail me the weekly digest" in client.get(dashboard_url(stream)).content.decode()

    response = client.post(toggle_url(stream), {"subscribe": "1"}, follow=True)

    assert response.redirect_chain == [(dashboard_url(stream), 302)]
    page = response.content.decode()
    assert "You will receive the weekly digest every Monday." in page
    assert "Stop the weekly digest" in page
    assert DigestSubscription.objects.filter(user=member, value_stream=stream).exists()

    response = client.post(toggle_url(stream), {"subscribe": "0"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "E-mail me the weekly digest" in response.content.decode()
    assert 'id="digest-toggle"' in response.content.decode()
    assert not DigestSubscription.objects.exists()


def test_the_manager_is_told_they_receive_it(stream, manager):
    page = logged_in(manager).get(dashboard_url(stream)).content.decode()
    assert "as the stream's manager" in page
    assert "E-mail me the weekly digest" not in page


def test_outsiders_get_404_and_anonymous_users_the_login_page(stream, user):
    assert logged_in(user).post(toggle_url(stream), {"subscribe": "1"}).status_code == 404
    anonymous = Client().post(toggle_url(stream), {"subscribe": "1"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert not DigestSubscription.objects.exists()


def test_an_admin_who_is_no_member_is_told_why_not(stream):
    admin = UserFactory(is_superuser=True, is_staff=True)
    response = logged_in(admin).post(toggle_url(stream), {"subscribe": "1"}, follow=True)
    assert "Only members of the value stream" in response.content.decode()
    assert not DigestSubscription.objects.exists()


def test_the_toggle_takes_a_post_of_1_or_0(stream, member):
    client = logged_in(member)
    assert client.get(toggle_url(stream)).status_code == 405
    assert client.post(toggle_url(stream), {"subscribe": "yes"}).status_code == 400
    assert not DigestSubscription.objects.exists()


def test_the_toggle_state_is_one_query(stream, manager, member, user, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert digest_subscription_state(member, stream) == "unsubscribed"
    subscribe(member, stream)
    with django_assert_num_queries(1):
        assert digest_subscription_state(member, stream) == "subscribed"
    with django_assert_num_queries(1):
        assert digest_subscription_state(user, stream) is None
    with django_assert_num_queries(0):
        assert digest_subscription_state(manager, stream) == "manager"


def test_a_member_with_the_manager_role_is_a_member(stream, team):
    coordinator = MembershipFactory(team=team, role=Role.VALUE_STREAM_MANAGER).user
    subscribe(coordinator, stream)
    assert coordinator.pk in [r.user_id for r in digest_recipients(stream)]


# The oracle's stream (module-scoped: kept last, so no test above sees it)


def test_the_oracle_week_of_5_may(board, settings):  # noqa: F811
    # The week of Monday 5 May 2025 against the week of 28 Apr: A won (400, lead time 28
    # days: 7 Apr to 5 May) against C won (2,000, 18 days: 14 Apr to 2 May); no arrival
    # in either; on the board on the Sundays: B on 11 May, A and B on 4 May.
    stream = board.stream
    stream.manager.email = "oracle@example.com"
    stream.manager.save()

    digest = weekly_digest_get(stream, datetime.date(2025, 5, 5))
    assert send(stream, datetime.date(2025, 5, 5)) == 1
    text, html = parts(mail.outbox[0])

    constraint = digest.constraint
    assert constraint
    assert text.splitlines()[0] == (
        f"Oracle pumps, week of 5 May: 1 won (400), constraint {constraint}, no signal"
    )
    for line in (
        "- Arrivals: 0 (week before 0, no change)",
        "- Won: 1 (week before 1, no change)",
        "- Won value: 400 (week before 2,000, −1,600)",
        "- WIP: 1 (week before 2, −1)",
        "- Lead time p50: 28.0 d (week before 18.0 d, +10.0 d)",
        "- Conversion to won: 100% (week before 100%, no change)",
        "- Throughput (closed): 1 (week before 1, no change)",
        # Won by week from the stream's first (7 Apr): 0, 0, 0, 1, 1: upper limit
        # 0.4 + 2.66 x 0.25 = 1.07, no signal (over 12 weeks, seven of them before the
        # stream existed, it was "above its upper natural process limit (0.4)").
        "- None: every weekly number stayed within its natural process limits.",
        f"{constraint} limits the flow.",
        # B entered Sales/Buying on 29 Apr 09:00: 12.625 days before Monday 12 May 00:00,
        # past the cycle's p85 of 12 days (A's passage, 23 Apr to 5 May). The other open
        # cards, D and F, came after the week.
        f"- Prospect B, in {SALES} / Data, 12.6 days in its cycle, past its cycle's 85th "
        f"percentile (12.0 days): {BASE_URL}/streams/{stream.slug}/cards/{board.cards['B']}/",
        "1 open card is older than its cycle's 85th percentile.",
    ):
        assert line in text, line
    assert "Prospect D" not in text and "Prospect F" not in text
    assert "Won value</td>" in html and "400</td>" in html and "−1,600</td>" in html
    assert (
        f">Prospect B</a>, in {SALES} / Data, 12.6 days in its cycle, past its cycle&#x27;s "
        "85th percentile (12.0 days)</li>"
    ) in html
    assert "1 open card is older than its cycle&#x27;s 85th percentile." in html


def test_the_digest_shows_the_week_as_the_review_does_from_its_snapshot(board):  # noqa: F811
    from django.utils import timezone

    stream, monday = board.stream, datetime.date(2025, 5, 5)
    query = week_query(stream, monday, first_week=stream_first_week(stream))
    data = stream_metrics_compute(query).to_json()
    assert data["constraint"]["column_id"] is not None
    # Mark the snapshot so the test can tell where the digest's numbers came from.
    data["constraint"]["name"] = "As the snapshot recorded it"
    WeeklySnapshot.objects.create(
        value_stream=stream,
        week_start=monday + datetime.timedelta(weeks=1),
        through_move_id=0,
        taken_at=timezone.now(),
        data=data,
    )
    assert weekly_digest_get(stream, monday).constraint == "As the snapshot recorded it"


def test_it_lists_the_experiments_ready_for_their_check(scripted, stream, manager):
    from decimal import Decimal

    from django.utils import timezone

    from pdca.models import Cycle, ExperimentStage
    from tests.factories import ExperimentFactory

    started = timezone.now() - datetime.timedelta(days=30)
    experiment = ExperimentFactory(
        cycle=Cycle.objects.get(value_stream=stream, order=1),
        window_start=(started - datetime.timedelta(days=started.weekday())).date(),
        planned_weeks=1,
        stage=ExperimentStage.DO,
        started_at=started,
        baseline=Decimal("3"),
        baseline_cards=30,
        baseline_weekly=[3, 2, 3, 4, 3, 3],
        hypothesis="We believe a weekly call will help",
    )

    assert send(stream) == 1
    text, html = parts(mail.outbox[0])

    url = f"{BASE_URL}/streams/{stream.slug}/experiments/{experiment.pk}/"
    assert "Experiments ready for their Check" in text
    assert f"- Collaboration: We believe a weekly call will help: {url}" in text
    assert f'href="{url}"' in html
