"""The weekly digest e-mail: what it says about one ISO week of a stream, and to whom.

``weekly_digest_get`` reads the week through the dashboard (``dashboard_get``) with the
weekly review's query (``week_query``: the 12 weeks that end with it, or only those
since the stream's first week), so the e-mail shows the numbers the weekly review shows
for that week. ``digest_recipients`` and
``digest_subscription_state`` answer who receives it. Links are absolute, built on
settings.VSM_BASE_URL (a task has no request to build them from).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from boards.models import Card, CardMove, card_display_name
from boards.templatetags.board_tags import card_url_prefix
from metrics.fold.timeline import metrics_zone
from metrics.models import CardFlowState, DigestSubscription
from metrics.selectors.dashboard import Tile, dashboard_get
from metrics.selectors.query import stream_first_week
from metrics.selectors.readmodel import StreamMetricsDocument, XmR
from metrics.selectors.review import WeekNotReviewable, week_dashboard_get, week_query
from metrics.selectors.statistics import DAY
from metrics.templatetags.metrics_tags import metric
from pdca.selectors import ExperimentQuery, experiments_check_ready
from vsm.models import Membership, ValueStream

if TYPE_CHECKING:
    # The concrete user model (AUTH_USER_MODEL is Django's): foreign keys to it take a
    # User, not any AbstractBaseUser. request.user is typed User | AnonymousUser alike.
    from django.contrib.auth.models import AnonymousUser, User

# How many of the oldest open cards the digest lists.
OLDEST_CARDS = 3
# The weekly review page of a stream's week: args (stream slug, "YYYY-MM-DD" Monday).
REVIEW_URL_NAME = "metrics:review"

# The weekly series the document keeps XmR limits for (StreamFlow.xmr), in its words:
# (attribute of StreamFlow and of StreamXmR, label, unit).
SIGNAL_SERIES = (
    ("won_weekly", "Deals won", "count"),
    ("win_rate_weekly", "Conversion to won", "share"),
    ("lead_time_median_weekly", "Median lead time", "days"),
)


@dataclass(frozen=True)
class DigestSignal:
    """A process-behaviour signal (statistics.xmr) that the reviewed week raised.
    ``metric``: the series' label; ``rule``: xmr's rule; ``text``: one sentence."""

    metric: str
    rule: str
    text: str


@dataclass(frozen=True)
class DigestCard:
    """One of the oldest open cards in process at the end of the week: ``age_days`` in
    its cycle then (days of 24 h); ``column``: "Cycle / Column", where it is now (the
    fold keeps no past positions): ``moved_since`` when it entered that column after the
    week's end; ``cycle_p85_days``: its cycle's 85th percentile cycle time over the
    window (None: no card finished the cycle in it); ``past_p85``: whether it is older
    than that; ``url``: absolute, its page on the board."""

    card_id: int
    name: str
    column: str
    moved_since: bool
    age_days: float
    cycle_p85_days: float | None
    past_p85: bool
    url: str

    @property
    def where(self) -> str:
        """Where it is, in words: "in Cycle / Column", or "now in ..." when it moved
        there after the week's end."""
        return f"{'now in' if self.moved_since else 'in'} {self.column}"

    @property
    def against_p85(self) -> str:
        """Its age against its cycle's 85th percentile, in words."""
        if self.cycle_p85_days is None:
            return "its cycle has no 85th percentile yet"
        side = "past" if self.past_p85 else "within"
        return f"{side} its cycle's 85th percentile ({self.cycle_p85_days:.1f} days)"


@dataclass(frozen=True)
class WeeklyDigest:
    """What the weekly digest of one ISO week of a stream says.

    ``week``: the reviewed week's Monday. ``summary``: one line, e.g. "Industrial
    pumps, week of 23 Nov: 4 won (12,500), constraint Sales/Buying / Knowledge, 1
    signal". ``tiles``: the dashboard's headline tiles for the week (value against the
    week before). ``signals``: only those the reviewed week raised. ``constraint``:
    the constraint's name (None when no column stands out) and its evidence in words.
    ``oldest_cards``: the OLDEST_CARDS open cards in process at the week's end that
    had been in their cycle longest, oldest first. ``aging_count``: how many open cards
    were older than their cycle's 85th percentile then (``aging_text`` says it).
    ``review_url``, ``dashboard_url``: absolute.
    """

    stream_name: str
    week: date
    summary: str
    tiles: list[Tile]
    signals: list[DigestSignal]
    constraint: str | None
    constraint_evidence: list[str]
    oldest_cards: list[DigestCard]
    aging_count: int
    review_url: str
    dashboard_url: str
    # The experiments whose Check can be taken (pdca.selectors.experiments_check_ready):
    # (what, absolute link).
    check_ready: list[tuple[str, str]] = field(default_factory=list)

    @property
    def aging_text(self) -> str:
        if self.aging_count == 0:
            return "No open card is older than its cycle's 85th percentile."
        if self.aging_count == 1:
            return "1 open card is older than its cycle's 85th percentile."
        return f"{self.aging_count} open cards are older than their cycle's 85th percentile."

    @property
    def subject(self) -> str:
        # A header: a name with a line break in it must not break the message.
        name = " ".join(self.stream_name.split())
        return f"{name}: weekly digest, week of {self.week.day} {self.week:%b %Y}"


@dataclass(frozen=True)
class Recipient:
    """Who a digest goes to: ``address`` as sent to (stripped, lower-cased)."""

    user_id: int
    address: str


def week_bounds(monday: date) -> tuple[datetime, datetime]:
    """The ISO week of ``monday`` as [start, end): local midnights in settings.TIME_ZONE."""
    zone = metrics_zone()
    start = datetime.combine(monday, time.min, tzinfo=zone)
    return start, datetime.combine(monday + timedelta(weeks=1), time.min, tzinfo=zone)


def week_had_activity(stream: ValueStream, monday: date) -> bool:
    """Whether anything happened on the stream's board in the ISO week of ``monday``: an
    event in its move log dated in the week (an arrival, a move, a handoff, a win, a
    loss, a reopen), or a card blocked in the week and still blocked (the board keeps
    only the current block's start: a card blocked and unblocked again leaves no trace,
    and an edit of a card's facts is no event). One query.
    """
    start, end = week_bounds(monday)
    moves = CardMove.objects.filter(value_stream=stream, moved_at__gte=start, moved_at__lt=end)
    blocks = Card.objects.filter(value_stream=stream, blocked_at__gte=start, blocked_at__lt=end)
    return (
        ValueStream.objects.filter(pk=stream.pk)
        .filter(Q(Exists(moves)) | Q(Exists(blocks)))
        .exists()
    )


def weekly_digest_get(stream: ValueStream, monday: date) -> WeeklyDigest | None:
    """The digest of the stream's ISO week that starts on ``monday`` (a full week, read
    as it stood at its end: MetricsQuery.for_week), or None when nothing happened in
    it (see ``week_had_activity``). Reads the aggregates as the fold left them: fold
    the stream first (the weekly snapshot does).

    Raises: ValueError (``monday`` is not a Monday);
    django.urls.NoReverseMatch if the weekly review's URL is missing.
    """
    if monday.weekday() != 0:
        raise ValueError(f"An ISO week starts on a Monday; {monday} is a {monday:%A}.")
    if not week_had_activity(stream, monday):
        return None
    try:
        # As the review shows it: from the snapshot taken the Monday after, if any.
        dashboard, _ = week_dashboard_get(stream, monday)
    except WeekNotReviewable:  # a week the review does not cover (not over yet)
        dashboard = dashboard_get(week_query(stream, monday, first_week=stream_first_week(stream)))
    document = dashboard.document
    tiles = {tile.key: tile for tile in dashboard.tiles}
    signals = week_signals(document)
    constraint = document.constraint
    won, won_value = tiles["won"], tiles["won-value"]
    counted = "no signal" if not signals else f"{len(signals)} signal" + "s"[: len(signals) > 1]
    summary = (
        f"{stream.name}, week of {monday.day} {monday:%b}: "
        f"{metric(won.value, won.unit)} won ({metric(won_value.value, won_value.unit)}), "
        + (f"constraint {constraint.name}" if constraint.column_id else "no constraint stands out")
        + f", {counted}"
    )
    base = settings.VSM_BASE_URL
    return WeeklyDigest(
        stream_name=stream.name,
        week=monday,
        summary=summary,
        tiles=dashboard.tiles,
        signals=signals,
        constraint=constraint.name if constraint.column_id else None,
        constraint_evidence=list(constraint.evidence),
        oldest_cards=oldest_cards(stream, document, end=week_bounds(monday)[1]),
        aging_count=document.aging.over_cycle_p85_count,
        review_url=base + reverse(REVIEW_URL_NAME, args=[stream.slug, monday.isoformat()]),
        dashboard_url=base + reverse("metrics:dashboard", args=[stream.slug]),
        check_ready=[
            (
                f"{experiment.cycle.name}: {experiment.hypothesis[:90]}",
                base + reverse("metrics:experiment", args=[stream.slug, experiment.pk]),
            )
            for experiment in experiments_check_ready(ExperimentQuery(stream=stream))
        ],
    )


def week_signals(document: StreamMetricsDocument) -> list[DigestSignal]:
    """The XmR signals of the document's last full week (the reviewed one), in words,
    in SIGNAL_SERIES order. Earlier weeks' signals were news in their own digest."""
    last = len(document.window.weeks) - 1
    result = []
    for name, label, unit in SIGNAL_SERIES:
        chart: XmR = getattr(document.stream.xmr, name)
        value = getattr(document.stream, name).values[last] if last >= 0 else None
        for signal in chart.signals:
            if signal.index == last and value is not None:
                words = _rule_words(signal.rule, value, unit, chart)
                text = f"{label}: {metric(value, unit)} in the week, {words}."
                result.append(DigestSignal(metric=label, rule=signal.rule, text=text))
    return result


def _rule_words(rule: str, value: float, unit: str, chart: XmR) -> str:
    if rule == "above the upper limit":
        return f"above its upper natural process limit ({metric(chart.upper, unit)})"
    if rule == "below the lower limit":
        return f"below its lower natural process limit ({metric(chart.lower, unit)})"
    if rule == "moving range above its upper limit":
        jump = chart.moving_range_upper
        limit = (
            f"{jump * 100:.0f} pts" if unit == "share" and jump is not None else metric(jump, unit)
        )
        return f"a bigger jump from the week before than chance explains (limit {limit})"
    if rule == "eight in a row on one side of the mean":
        side = "above" if chart.mean is not None and value > chart.mean else "below"
        return f"the eighth week in a row {side} its mean ({metric(chart.mean, unit)})"
    return rule


def oldest_cards(
    stream: ValueStream, document: StreamMetricsDocument, *, end: datetime
) -> list[DigestCard]:
    """The OLDEST_CARDS open cards that had been in their cycle longest at ``end`` (the
    week's end), oldest first, named, each against its cycle's 85th percentile in
    ``document``. Cards that entered their cycle after ``end`` are left out (they were
    not there yet); the open cards are today's (a card closed since is not listed). One
    query."""
    rows = (
        CardFlowState.objects.filter(value_stream=stream, is_open=True, cycle_entered_at__lte=end)
        .order_by("cycle_entered_at", "card_id")
        .values_list(
            "card_id",
            "column_id",
            "cycle_id",
            "cycle_entered_at",
            "column_entered_at",
            "card__person_name",
            "card__company",
        )[:OLDEST_CARDS]
    )
    columns = {column.id: f"{column.cycle} / {column.name}" for column in document.columns}
    p85 = {cycle.id: cycle.cycle_time.p85 for cycle in document.cycles}
    prefix = settings.VSM_BASE_URL + card_url_prefix(stream)
    result = []
    for card_id, column_id, cycle_id, cycle_entered, column_entered, person, company in rows:
        age_days = (end - cycle_entered).total_seconds() / DAY
        limit = p85.get(cycle_id)
        result.append(
            DigestCard(
                card_id=card_id,
                name=card_display_name(person, company),
                column=columns.get(column_id, ""),
                moved_since=column_entered > end,
                age_days=round(age_days, 2),
                cycle_p85_days=limit,
                # As the document's aging list compares: the exact age.
                past_p85=limit is not None and age_days > limit,
                url=f"{prefix}{card_id}/",
            )
        )
    return result


def digest_recipients(stream: ValueStream) -> list[Recipient]:
    """Who receives the stream's digest: its manager, then the members who asked for it
    (a DigestSubscription while still in one of its teams), in user id order; active
    users with an e-mail address only, and each address once (compared without case:
    the first user with it). One query."""
    member = Membership.objects.filter(user=OuterRef("pk"), team__value_stream=stream)
    subscribed = DigestSubscription.objects.filter(user=OuterRef("pk"), value_stream=stream)
    rows = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(pk=stream.manager_id) | Q(Exists(member), Exists(subscribed)))
        .order_by("pk")
        .values_list("pk", "email")
    )
    ordered = sorted(rows, key=lambda row: row[0] != stream.manager_id)
    result, seen = [], set()
    for user_id, email in ordered:
        address = (email or "").strip().lower()
        if address and address not in seen:
            seen.add(address)
            result.append(Recipient(user_id=user_id, address=address))
    return result


def digest_subscription_state(user: User | AnonymousUser, stream: ValueStream) -> str | None:
    """What the dashboard offers this user about the stream's digest: "manager" (always
    receives it), "subscribed", "unsubscribed" (a member who may ask for it), or None
    (anonymous, or no member: nothing to offer). At most one query."""
    if not user.is_authenticated:
        return None
    if user.pk == stream.manager_id:
        return "manager"
    row = (
        ValueStream.objects.filter(pk=stream.pk)
        .annotate(
            member=Exists(Membership.objects.filter(user=user, team__value_stream=OuterRef("pk"))),
            subscribed=Exists(
                DigestSubscription.objects.filter(user=user, value_stream=OuterRef("pk"))
            ),
        )
        .values_list("member", "subscribed")
        .first()
    )
    if row is None or not row[0]:
        return None
    return "subscribed" if row[1] else "unsubscribed"
