"""Every URL of the project, with every method, fed malformed input: never a 5xx, and
the board's invariants hold after each request (tests/invariants.py).

The URL patterns are read from the project's resolver, recursively, with their
converters: a new page is fuzzed without a change here. Path parameters are filled
with ids of a small world (a stream with cards in several columns, a full column, one
over its limit by an override, won and lost cards, experiments, a review entry, and
another stream) and with wrong ones; query strings and bodies with the fields of the
page's forms (FORMS_OF) and hypothesis' strategies: wrong types, huge, negative and
Unicode digits, NUL, long strings, broken multipart bodies. Requests are made as an
admin, a member of the stream or anonymously; the last test posts a few of the
board's writes in a row, most of them well-formed, so that cards really move.

- A sweep sends every pattern each method and role once: every page is reached.
- Hypothesis draws the rest. The world is made once per test, and each example (one
  request, or a few writes) runs in a savepoint rolled back after it: no example can
  change what the next one sees, so hypothesis can replay and shrink a failure.

About 45 s on SQLite; CI runs it on PostgreSQL too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import quote, urlencode

import pytest
from django import forms
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import models, transaction
from django.http import HttpResponse
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import boards.forms
import boards.views.privacy
import metrics.forms.experiments
import metrics.forms.filters
import metrics.forms.forecast
import metrics.views.review
from boards.forms import (
    ArchiveFilterForm,
    BlockForm,
    BoardFilterForm,
    CardCreateForm,
    CardForm,
    CardMoveForm,
    CloseForm,
    ColumnPageForm,
    CommentForm,
    HandoffForm,
    HandoffTargetForm,
    ReopenForm,
    VersionForm,
    WipLimitForm,
)
from boards.models import Card, CardMove, Column, Outcome
from boards.services import (
    card_close,
    card_comment_add,
    card_create,
    card_move,
    card_set_blocked,
    column_set_wip_limit,
    value_stream_create,
)
from boards.views.privacy import ErasureForm
from metrics.charts import CONVERSION_WEEKLY_KEY, LOST_REASONS_KEY
from metrics.forms.experiments import (
    ExperimentActForm,
    ExperimentEditForm,
    ExperimentPlanForm,
    ExperimentStepForm,
)
from metrics.forms.filters import DashboardFilterForm
from metrics.forms.forecast import ForecastForm
from metrics.selectors.query import last_full_week
from metrics.services import review_entry_record
from metrics.views.review import ReviewEntryForm, WeekPickForm
from pdca.models import Criterion, Cycle
from tests.factories import ChannelFactory, MembershipFactory, UserFactory
from tests.invariants import ColumnLoad, board_invariant_violations, column_loads
from tests.support import (
    COLLABORATION,
    SALES,
    TEST_SYSTEM,
    as_actor,
    column_of,
    experiment_checked,
    experiment_planned,
    experiment_running,
)
from vsm.forms import ROW_ID_MAX, RowIdField
from vsm.models import Channel, LostReason, Role, Team, ValueStream
from vsm.services.lost_reasons import lost_reason_create

pytestmark = pytest.mark.django_db

ROLES = ("admin", "member", "anonymous")
# Pages are read and posted; the other methods are refused, the same way everywhere.
METHOD_DRAWS = ("GET",) * 4 + ("POST",) * 4 + ("HEAD", "PUT", "PATCH", "DELETE", "OPTIONS")

# Django's own pattern for a route's parameters (django.urls.resolvers).
_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


# The URL patterns, as templates to fill.


@dataclass(frozen=True)
class Param:
    name: str
    regex: str  # the converter's


@dataclass(frozen=True)
class Free:
    """A piece of a regex pattern (the admin's app index and catch-all)."""

    regex: str


Piece = str | Param | Free


@dataclass(frozen=True)
class UrlTemplate:
    pieces: tuple[Piece, ...]
    name: str
    # The admin's model of the pattern (its object ids are that model's), if any.
    model: type[models.Model] | None = None

    def params(self) -> list[Param | Free]:
        return [piece for piece in self.pieces if not isinstance(piece, str)]

    def render(self, values: list[str]) -> str:
        """The path, each parameter given its value (quoted: a value is one segment)."""
        filled = iter(values)
        path = "".join(
            piece if isinstance(piece, str) else quote(next(filled), safe="")
            for piece in self.pieces
        )
        return "/" + path

    def __str__(self) -> str:
        return self.render([f"<{p.name if isinstance(p, Param) else '*'}>" for p in self.params()])


def _route_pieces(pattern: RoutePattern) -> list[Piece]:
    route, pieces, at = str(pattern._route), [], 0
    for match in _PARAMETER.finditer(route):
        pieces.append(route[at : match.start()])
        converter = pattern.converters[match["name"]]
        pieces.append(Param(match["name"], converter.regex))
        at = match.end()
    pieces.append(route[at:])
    return [piece for piece in pieces if piece != ""]


def _regex_pieces(pattern: RegexPattern) -> list[Piece]:
    return [Free(str(pattern._regex).removeprefix("^").removesuffix("$"))]


def url_templates() -> list[UrlTemplate]:
    """Every URL pattern of the project, its includes walked."""
    admin_models = {
        f"{model._meta.app_label}/{model._meta.model_name}/": model
        for model in admin.site._registry
    }
    templates: list[UrlTemplate] = []

    def walk(entries, prefix: list[Piece], model: type[models.Model] | None) -> None:
        for entry in entries:
            pattern = entry.pattern
            pieces = (
                _route_pieces(pattern)
                if isinstance(pattern, RoutePattern)
                else _regex_pieces(pattern)
            )
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + pieces, admin_models.get(str(pattern), model))
            else:
                assert isinstance(entry, URLPattern)
                templates.append(UrlTemplate(tuple(prefix + pieces), entry.name or "", model))

    walk(get_resolver().url_patterns, [], None)
    return templates


TEMPLATES = url_templates()
# Each of the app's own pages as often as four of the admin's (which are three
# quarters of the patterns, and much alike).
TEMPLATE_DRAWS = [
    template
    for template in TEMPLATES
    for _ in range(1 if template.pieces[:1] == ("admin/",) else 4)
]


# The world.


@dataclass(frozen=True)
class BoardPlaces:
    """The stream's cards and where a page would send each: the columns of its cycle
    (and one of the next, which only a handoff reaches), the first column of the next
    cycle with the criteria of the control point on the way."""

    open_cards: list[int]
    closed_cards: list[int]
    moves_to: dict[int, list[int]]
    handoff_to: dict[int, int]
    criteria: list[int]
    columns: list[int]
    cycles: list[int]
    lost_reasons: list[int]


@dataclass
class World:
    users: dict[str, object | None]
    stream: ValueStream
    # Valid values of each path parameter, by name; of an admin object id, by model.
    values: dict[str, list[str]]
    object_ids: dict[type[models.Model], list[str]]
    # Every id of the world's rows, whatever they are (a field's value "of its kind").
    row_ids: list[str] = field(default_factory=list)
    # For the board's writes: the cards of the stream by state, and where each may go.
    board: BoardPlaces | None = None
    loads: dict[int, ColumnLoad] = field(default_factory=dict)
    overrides_after: int = 0

    def valid(self, template: UrlTemplate, param: Param) -> list[str]:
        if template.model is not None and param.name in ("object_id", "id"):
            return self.object_ids.get(template.model, []) or ["1"]
        return self.values.get(param.name, [])


def build_world() -> World:
    """Two streams; the first with cards in several columns, a full column (and one
    over its limit, with the override logged), a blocked card, won and lost ones, a
    comment, experiments at three stages and a review entry; a member and an admin."""
    manager = UserFactory(username="fuzz-manager")
    stream = value_stream_create(
        actor=TEST_SYSTEM, name="Fuzzed pumps", customer_market="Anyone", manager=manager
    )
    # Three weeks old: the weekly review has weeks to show.
    ValueStream.objects.filter(pk=stream.pk).update(created_at=timezone.now() - timedelta(weeks=3))
    stream.refresh_from_db()
    team = Team.objects.get(value_stream=stream, memberships__user=manager)
    member = MembershipFactory(team=team, role=Role.MEMBER).user
    superuser = UserFactory(username="fuzz-admin", is_staff=True, is_superuser=True)
    other = value_stream_create(
        actor=TEST_SYSTEM,
        name="Fuzzed clinics",
        customer_market="Others",
        manager=UserFactory(username="fuzz-other-manager"),
    )
    ChannelFactory(value_stream=stream, name="Web form")
    reason = lost_reason_create(stream_id=stream.pk, name="Price", actor=TEST_SYSTEM)

    actor = as_actor(manager)
    collaboration = Cycle.objects.get(value_stream=stream, name=COLLABORATION)

    def enter(name: str, column: str = "Data", target: ValueStream = stream) -> Card:
        cycle = Cycle.objects.get(value_stream=target, order=1)
        card = card_create(
            cycle_id=cycle.pk,
            actor=TEST_SYSTEM,
            person_name=name,
            email=f"{name.lower()}@example.com",
            estimated_value=1000,
        ).card
        if column != "Data":
            card_move(
                card_id=card.pk,
                to_column_id=column_of(target, cycle.name, column).pk,
                actor=TEST_SYSTEM,
            )
        return card

    enter("Ada")
    informed = enter("Bea", "Information")
    enter("Cem", "Wisdom")  # the last column of its cycle: ready for the handoff
    full = column_of(stream, COLLABORATION, "Knowledge")
    enter("Dan", "Knowledge")
    column_set_wip_limit(column_id=full.pk, wip_limit=1, actor=actor)
    over = column_of(stream, COLLABORATION, "Information")
    column_set_wip_limit(column_id=over.pk, wip_limit=1, actor=actor)
    card_move(
        card_id=enter("Eva").pk,
        to_column_id=over.pk,
        actor=actor,
        wip_override_reason="A referral from the trade fair",
    )
    card_set_blocked(card_id=informed.pk, blocked=True, reason="Waiting for a call", actor=actor)
    card_comment_add(card_id=informed.pk, text="Decides in May.", actor=actor)
    card_close(card_id=enter("Fay").pk, outcome=Outcome.WON, actor=actor)
    card_close(card_id=enter("Gus").pk, outcome=Outcome.LOST, actor=actor, lost_reason_id=reason.pk)
    enter("Hal", target=other)

    sales = Cycle.objects.get(value_stream=stream, name=SALES)
    experiments = [
        experiment_planned(sales, team),
        experiment_running(sales, team),
        experiment_checked(sales, team),
    ]
    week = last_full_week()
    entry = review_entry_record(
        stream_id=stream.pk, week_start=week, kind="note", text="Slow handoffs.", actor=actor
    )

    def ids(queryset: models.QuerySet) -> list[str]:
        return [str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True)[:30]]

    cards = ids(Card.objects.all())
    # This stream's columns, and two of the other's.
    columns = (
        ids(Column.objects.filter(cycle__value_stream=stream))
        + ids(Column.objects.filter(cycle__value_stream=other))[:2]
    )

    world = World(
        users={"admin": superuser, "member": member, "anonymous": None},
        stream=stream,
        values={
            # Another stream's now and then (its manager's, not the member's).
            "stream_slug": [stream.slug] * 3 + [other.slug],
            "card_id": cards,
            "column_id": columns,
            "experiment_id": [str(experiment.pk) for experiment in experiments],
            "entry_id": [str(entry.pk)],
            "week": [week.isoformat(), (week - timedelta(weeks=1)).isoformat()],
            "chart_key": ["throughput", "cumulative-flow", CONVERSION_WEEKLY_KEY, LOST_REASONS_KEY],
            "content_type_id": ids(ContentType.objects.all())[:5],
            # The fields of the forms that name rows, by name.
            "to_column": columns,
            "column": columns,
            "after": cards,
            "before": cards,
            "after_id": cards,
            "version": ["1", "2", "3", "4"],
            "lost_reason": ids(LostReason.objects.all()),
            "cycle": ids(Cycle.objects.all()),
            "channel": ids(Channel.objects.all()),
            "owner": [str(manager.pk), str(member.pk), str(superuser.pk)],
            "team": ids(Team.objects.all()),
            "criteria": ids(Criterion.objects.filter(control_point__from_cycle=collaboration)),
        },
        object_ids={model: ids(model._default_manager.all()) for model in admin.site._registry},
    )
    cycles = list(Cycle.objects.filter(value_stream=stream).order_by("order"))
    columns_of = {
        cycle.pk: list(cycle.columns.order_by("order").values_list("pk", flat=True))
        for cycle in cycles
    }
    following = {cycle.pk: after.pk for cycle, after in zip(cycles, cycles[1:], strict=False)}
    open_cards = Card.objects.filter(value_stream=stream, outcome=Outcome.OPEN)
    world.board = BoardPlaces(
        open_cards=[card.pk for card in open_cards],
        closed_cards=list(
            Card.objects.filter(value_stream=stream)
            .exclude(outcome=Outcome.OPEN)
            .values_list("pk", flat=True)
        ),
        moves_to={
            card.pk: columns_of[card.column.cycle_id]
            + columns_of[following.get(card.column.cycle_id, cycles[0].pk)][:1]
            for card in open_cards.select_related("column")
        },
        handoff_to={
            card.pk: columns_of[following[card.column.cycle_id]][0]
            for card in open_cards.select_related("column")
            if card.column.cycle_id in following
        },
        criteria=list(
            Criterion.objects.filter(control_point__from_cycle=collaboration).values_list(
                "pk", flat=True
            )
        ),
        columns=[pk for pks in columns_of.values() for pk in pks],
        cycles=[cycle.pk for cycle in cycles],
        lost_reasons=[reason.pk],
    )
    world.row_ids = sorted(
        {pk for pks in world.object_ids.values() for pk in pks}, key=lambda pk: (len(pk), pk)
    )
    world.loads = column_loads()
    world.overrides_after = CardMove.objects.order_by("-pk").values_list("pk", flat=True)[0]
    return world


# What requests carry.


def _form_field_names() -> set[str]:
    """The names of every field of the apps' forms: the parameters the views read."""
    names: set[str] = set()
    for module in (
        boards.forms,
        boards.views.privacy,
        metrics.forms.experiments,
        metrics.forms.filters,
        metrics.forms.forecast,
        metrics.views.review,
    ):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, forms.BaseForm):
                names.update(value.base_fields)
    return names


KEYS = sorted(
    _form_field_names()
    | {
        # Read by hand, or by the admin and the login forms.
        "shown",
        "version",
        "older",
        "newer",
        "week",
        "subscribe",
        "criteria",
        "next",
        "q",
        "o",
        "p",
        "e",
        "kind",
        "outcome",
        "stage__exact",
        "kind__exact",
        "value_stream__id__exact",
        "is_active__exact",
        "moved_at__year",
        "moved_at__month",
        "moved_at__day",
        "_changelist_filters",
        "action",
        "_selected_action",
        "select_across",
        "index",
        "post",
        "_save",
        "_continue",
        "username",
        "password",
        "old_password",
        "new_password1",
        "new_password2",
        "term",
        "app_label",
        "model_name",
        "field_name",
        "form-TOTAL_FORMS",
        "form-INITIAL_FORMS",
        "form-0-id",
        "form-0-wip_limit",
        "columns-TOTAL_FORMS",
        "columns-INITIAL_FORMS",
        "columns-0-id",
        "columns-0-name",
    }  # fmt: skip
)

UNICODE_DIGITS = ["²", "١", "١٢", "𝟏", "Ⅻ", "߁", "٣-٣", "１２"]
NUMBERS = [
    "0", "-1", "1", str(ROW_ID_MAX), str(ROW_ID_MAX + 1), str(2**64), "-" + str(2**63 + 1),
    "1e3", "1e400", "1.5", "NaN", "inf", "-0", " 7 ", "+5", "0x10", "1_000", "9" * 5000,
]  # fmt: skip
NUL_TEXTS = ["\x00", "a\x00b", "1\x00", "\x00" * 3]
WORDS = [
    "won", "lost", "open", "block", "unblock", "on", "true", "1", "0", "note", "decision",
    "throughput", "conversion", "start", "stop", "check", "adopt", "abandon", "json", "",
]  # fmt: skip
SAFE_CHARACTERS = st.characters(codec="utf-8")  # no lone surrogates: they cannot be encoded


def weighted[T](*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each drawn about as often as its weight says."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )


def values(world: World) -> st.SearchStrategy[str]:
    """A parameter's value: an id of the world, a number of any kind, a word, a date,
    a long or a random text, and now and then a NUL (which the site refuses at once,
    so that it would hide the rest of the request if it came often)."""
    ids = sorted({value for values in world.values.values() for value in values})
    return weighted(
        (6, st.sampled_from(ids)),
        (3, st.sampled_from(NUMBERS)),
        (2, st.integers(min_value=-(2**70), max_value=2**70).map(str)),
        (3, st.sampled_from(UNICODE_DIGITS)),
        (3, st.sampled_from(WORDS)),
        (2, st.dates().map(date.isoformat)),
        (1, st.integers(min_value=300, max_value=5000).map(lambda n: "x" * n)),
        (2, st.text(SAFE_CHARACTERS, max_size=40)),
        (1, st.sampled_from(NUL_TEXTS)),
    )


def pairs(world: World, max_size: int = 8) -> st.SearchStrategy[list[tuple[str, str]]]:
    key = weighted((9, st.sampled_from(KEYS)), (1, st.text(SAFE_CHARACTERS, max_size=12)))
    return st.lists(st.tuples(key, values(world)), max_size=max_size)


# The forms each page reads (and the parameters it reads by hand): with values of the
# right kind, most requests get past the parsing to the services, and move, close,
# hand off and reopen cards, so that the invariants are checked after real changes.
FORMS_OF: dict[str, tuple[list[type[forms.BaseForm]], list[str]]] = {
    "board": ([BoardFilterForm], ["shown", "version"]),
    "board-poll": ([BoardFilterForm], ["shown", "version"]),
    "column-more": ([ColumnPageForm, BoardFilterForm], []),
    "column-wip-limit": ([WipLimitForm], []),
    "archive": ([ArchiveFilterForm], []),
    "card-create": ([CardCreateForm], ["shown"]),
    "card-detail": ([], ["older"]),
    "card-move": ([CardMoveForm], ["shown"]),
    "card-handoff": ([HandoffForm, HandoffTargetForm], ["criteria"]),
    "card-edit": ([CardForm, VersionForm], []),
    "card-block": ([BlockForm], []),
    "card-comment": ([CommentForm], []),
    "card-close": ([CloseForm], []),
    "card-reopen": ([ReopenForm], []),
    "card-personal-data": ([ErasureForm], []),
    "dashboard": ([DashboardFilterForm], []),
    "dashboard-csv": ([DashboardFilterForm], []),
    "forecast": ([DashboardFilterForm, ForecastForm], []),
    "review-latest": ([WeekPickForm], []),
    "review-entry-record": ([ReviewEntryForm], []),
    "experiments": ([ExperimentPlanForm], []),
    "experiment-edit": ([ExperimentEditForm], []),
    "experiment-act": ([ExperimentActForm], []),
    "experiment-start": ([ExperimentStepForm], []),
    "experiment-stop": ([ExperimentStepForm], []),
    "experiment-check": ([ExperimentStepForm], []),
    "digest-subscription": ([], ["subscribe"]),
}


# Fields a page sends only now and then (a drop between two cards, a version, an
# override): a wrong one refuses the whole request.
SELDOM_GIVEN = {"after", "before", "version", "override_reason", "after_id", "after_position"}


def plausible(world: World, name: str, field: forms.Field | None) -> st.SearchStrategy[str]:
    """A value of the kind the field ``name`` reads (``field``; None: an id), as a page
    would send it: for a field that names rows, the world's rows it may name."""
    today = timezone.localdate()
    if world.values.get(name):
        return st.sampled_from(world.values[name])
    if field is None or isinstance(field, forms.ModelChoiceField | RowIdField):
        return st.sampled_from(world.row_ids)
    if isinstance(field, forms.BooleanField):
        return st.sampled_from(["on", ""])
    if isinstance(field, forms.ChoiceField) and field.choices:
        return st.sampled_from([str(value) for value, _ in field.choices])
    if isinstance(field, forms.IntegerField):
        return st.integers(min_value=-1, max_value=20).map(str)
    if isinstance(field, forms.DecimalField):
        return st.sampled_from(["0", "100", "2500.50", "-1"])
    if isinstance(field, forms.DateField):
        return st.integers(min_value=-60, max_value=60).map(
            lambda days: (today + timedelta(days=days)).isoformat()
        )
    if isinstance(field, forms.EmailField):
        return st.sampled_from(["ada@example.com", "", "not an address"])
    if isinstance(field, forms.CharField):
        return st.sampled_from(["Ada Keller", "Nordwerk", "A referral", "", " ", "x" * 301])
    return st.sampled_from(world.row_ids)


Pairs = list[tuple[str, str]]


def form_pairs(world: World, url_name: str) -> st.SearchStrategy[Pairs]:
    """The fields of the page's forms, most of them given, each a value of its kind;
    now and then one value malformed, or malformed pairs added. A page with no form
    (in FORMS_OF): malformed pairs."""
    if url_name not in FORMS_OF:
        return pairs(world)
    form_classes, by_hand = FORMS_OF[url_name]
    fields: dict[str, forms.Field | None] = {name: None for name in by_hand}
    for form_class in form_classes:
        fields.update(form_class.base_fields)
    given = [
        weighted(
            (3 if name in SELDOM_GIVEN else 1, st.just([])),
            (
                2 if name in SELDOM_GIVEN else 6,
                plausible(world, name, field).map(lambda value, name=name: [(name, value)]),
            ),
        )
        for name, field in fields.items()
    ]
    well_formed = st.tuples(*given).map(lambda drawn: sum(drawn, []))
    one_malformed = st.tuples(well_formed, st.integers(min_value=0), values(world)).map(
        lambda drawn: _replaced(*drawn)
    )
    more = st.tuples(well_formed, pairs(world, max_size=2)).map(lambda drawn: drawn[0] + drawn[1])
    return weighted((3, well_formed), (1, one_malformed), (1, more))


def _replaced(given: Pairs, index: int, value: str) -> Pairs:
    """``given`` with the value of its pair ``index`` (modulo its length) replaced."""
    if not given:
        return given
    index %= len(given)
    return [(key, value if i == index else old) for i, (key, old) in enumerate(given)]


MULTIPART_XX = "multipart/form-data; boundary=xx"
URLENCODED = "application/x-www-form-urlencoded"
BROKEN_BODIES: list[tuple[bytes, str]] = [
    # Cut short: no closing boundary.
    (b'--xx\r\nContent-Disposition: form-data; name="version"\r\n\r\n1', MULTIPART_XX),
    (b"no boundary at all", "multipart/form-data"),
    (b"--" + b"b" * 80 + b"\r\n", "multipart/form-data; boundary=" + "b" * 80),
    (b'--xx\r\nContent-Disposition: form-data; name="a\x00"\r\n\r\n1\r\n--xx--\r\n', MULTIPART_XX),
    (
        b'--xx\r\nContent-Disposition: form-data; name="version"\r\n\r\n\xff\xfe\r\n--xx--\r\n',
        MULTIPART_XX,
    ),
    (b"--xx\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--xx--\r\n", MULTIPART_XX),
    (
        b'--xx\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!\r\n--xx--\r\n",
        MULTIPART_XX,
    ),
    (b"--xx--\r\n", MULTIPART_XX),
    (b"a=%00&b=%FF%FE&c&=&%", URLENCODED),
    (b"\xff\xfe\x00a\x00", URLENCODED + "; charset=utf-16"),
    (b"a=1", URLENCODED + "; charset=no-such-charset"),
    (b"&" * 3000, URLENCODED),
    (b'{"to_column": 1}', "application/json"),
]
CONTENT_TYPES = [
    "multipart/form-data; boundary=xx",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
    "application/json",
    "text/plain",
    "",
]


@dataclass(frozen=True)
class Body:
    """A request's body: form pairs (url-encoded or multipart), or raw bytes."""

    kind: str  # "urlencoded", "multipart" or "raw"
    pairs: tuple[tuple[str, str], ...] = ()
    raw: bytes = b""
    content_type: str = ""


def bodies(world: World, url_name: str) -> st.SearchStrategy[Body]:
    """A body for the page ``url_name``: its forms' fields (form_pairs), url-encoded or
    multipart; or random pairs, a broken body, random bytes."""
    form = form_pairs(world, url_name).map(tuple)
    return weighted(
        (6, form.map(lambda p: Body("urlencoded", pairs=p))),
        (2, form.map(lambda p: Body("multipart", pairs=p))),
        (1, pairs(world).map(lambda p: Body("urlencoded", pairs=tuple(p)))),
        (1, st.sampled_from(BROKEN_BODIES).map(_raw)),
        (
            1,
            st.tuples(st.binary(max_size=200), st.sampled_from(CONTENT_TYPES)).map(_raw),
        ),
    )


def _raw(body: tuple[bytes, str]) -> Body:
    return Body("raw", raw=body[0], content_type=body[1])


def query_pairs(world: World, url_name: str) -> st.SearchStrategy[Pairs]:
    return weighted((2, form_pairs(world, url_name)), (1, pairs(world, max_size=4)))


def path_values(world: World, template: UrlTemplate) -> st.SearchStrategy[list[str]]:
    """A value for each of the template's parameters: valid (the world's), or now and
    then wrong: anything the converter lets through, and other text."""
    strategies = []
    for param in template.params():
        if isinstance(param, Free):
            strategies.append(st.from_regex(param.regex, fullmatch=True, alphabet=SAFE_CHARACTERS))
            continue
        valid = world.valid(template, param)
        wrong_value = st.one_of(
            st.from_regex(param.regex, fullmatch=True, alphabet=SAFE_CHARACTERS),
            st.sampled_from(NUMBERS[:7] + UNICODE_DIGITS + NUL_TEXTS),
        )
        strategies.append(
            weighted((4, st.sampled_from(valid)), (1, wrong_value)) if valid else wrong_value
        )
    return st.tuples(*strategies).map(list)


# One request, checked.


@dataclass(frozen=True)
class Request:
    role: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Body = Body("urlencoded")
    htmx: bool = False

    def send(self, client: Client) -> HttpResponse:
        url = f"{self.path}?{urlencode(self.query)}" if self.query else self.path
        headers = {"HX-Request": "true"} if self.htmx else {}
        if self.method in ("GET", "HEAD", "OPTIONS") and self.body.kind != "raw":
            return client.generic(self.method, url, headers=headers)
        if self.body.kind == "multipart":
            data: dict[str, list[str]] = {}
            for key, value in self.body.pairs:
                data.setdefault(key, []).append(value)
            raw = encode_multipart(BOUNDARY, data)
            content_type = MULTIPART_CONTENT
        elif self.body.kind == "urlencoded":
            raw = urlencode(self.body.pairs).encode()
            content_type = URLENCODED
        else:
            raw, content_type = self.body.raw, self.body.content_type
        return client.generic(self.method, url, raw, content_type=content_type, headers=headers)


def check(world: World, *requests: Request) -> None:
    """Send ``requests`` one after the other, in a savepoint rolled back afterwards: no
    5xx, and the board's invariants hold once each is answered."""
    with transaction.atomic():
        cache.clear()
        clients: dict[str, Client] = {}
        for request in requests:
            if request.role not in clients:
                clients[request.role] = Client()
                user = world.users[request.role]
                if user is not None:
                    clients[request.role].force_login(user)
            response = request.send(clients[request.role])
            assert response.status_code < 500, f"{request} answered {response.status_code}"
            problems = board_invariant_violations(
                before=world.loads, overrides_after=world.overrides_after
            )
            assert not problems, f"after {request}: {problems}"
        transaction.set_rollback(True)


def requests(world: World, role: str, template: UrlTemplate) -> st.SearchStrategy[Request]:
    """A request to ``template`` by ``role``: its method, path, query and body drawn."""
    return st.builds(
        Request,
        role=st.just(role),
        method=st.sampled_from(METHOD_DRAWS),
        path=path_values(world, template).map(template.render),
        query=query_pairs(world, template.name).map(tuple),
        body=bodies(world, template.name),
        htmx=st.booleans(),
    )


def board_writes(world: World, role: str) -> st.SearchStrategy[Request]:
    """A write on the board as its page would post it (a move within the card's cycle,
    a handoff with the criteria ticked, a close, a reopen, a WIP limit, a new card),
    with now and then an override reason, or one value malformed."""
    assert world.board is not None
    board, slug = world.board, world.stream.slug
    override = weighted((3, st.just("")), (1, st.sampled_from(["A referral", "x" * 301])))

    def on_card(name: str, cards: list[int], fields) -> st.SearchStrategy[tuple[str, Pairs]]:
        return st.sampled_from(cards).flatmap(
            lambda card: st.tuples(
                st.just(reverse(f"boards:{name}", args=[slug, card])),
                fields(card).map(lambda chosen: [(k, str(v)) for k, v in chosen.items()]),
            )
        )

    move = on_card(
        "card-move",
        board.open_cards,
        lambda card: st.fixed_dictionaries(
            {
                "to_column": st.sampled_from(board.moves_to[card]),
                "override_reason": override,
                "dragged": st.sampled_from(["on", ""]),
            }
        ),
    )
    handoff = on_card(
        "card-handoff",
        board.open_cards,
        lambda card: st.fixed_dictionaries(
            {
                "to_column": st.just(board.handoff_to.get(card, board.columns[0])),
                "override_reason": override,
            }
        ),
    ).map(lambda drawn: (drawn[0], drawn[1] + [("criteria", str(pk)) for pk in board.criteria]))
    close = on_card(
        "card-close",
        board.open_cards,
        lambda card: st.fixed_dictionaries(
            {
                "outcome": st.sampled_from(["won", "lost"]),
                "lost_reason": st.sampled_from([*board.lost_reasons, ""]),
            }
        ),
    )
    reopen = on_card(
        "card-reopen",
        board.closed_cards + board.open_cards[:1],
        lambda card: st.fixed_dictionaries(
            {"override_reason": override, "undo": st.sampled_from(["", "on"])}
        ),
    )
    wip_limit = st.sampled_from(board.columns).flatmap(
        lambda column: st.tuples(
            st.just(reverse("boards:column-wip-limit", args=[slug, column])),
            st.sampled_from(["1", "2", "3", ""]).map(lambda limit: [("wip_limit", limit)]),
        )
    )
    create = st.tuples(
        st.just(reverse("boards:card-create", args=[slug])),
        st.fixed_dictionaries(
            {"cycle": st.sampled_from(board.cycles), "override_reason": override}
        ).map(lambda chosen: [("person_name", "Ida"), *((k, str(v)) for k, v in chosen.items())]),
    )
    write = weighted((4, move), (2, handoff), (2, close), (2, reopen), (1, wip_limit), (1, create))
    malformed = st.tuples(write, st.integers(min_value=0), values(world)).map(
        lambda drawn: (drawn[0][0], _replaced(drawn[0][1], drawn[1], drawn[2]))
    )
    return st.tuples(weighted((4, write), (1, malformed)), st.booleans()).map(
        lambda drawn: Request(
            role, "POST", drawn[0][0], body=Body("urlencoded", tuple(drawn[0][1])), htmx=drawn[1]
        )
    )


# The tests.


@pytest.fixture
def world(db) -> World:
    return build_world()


def test_every_url_pattern_and_method_with_valid_and_malformed_input(world):
    """The sweep: each pattern with each method, as each role, once with the world's
    ids and a body of malformed values, once with wrong ids. Every pattern is reached,
    whatever hypothesis draws below."""
    malformed = tuple(
        (key, value)
        for key, value in zip(
            ["to_column", "version", "shown", "wip_limit", "after_position", "criteria",
             "lost_reason", "email", "cycle", "items", "older", "channel", "owner"],
            ["²", str(2**63), "١:1,2:²", "١", "1e3", "²", "-1", "x" * 250 + "@example.com",
             "١", "１２", "1.٠.1", "0x10", str(2**64)],
            strict=True,
        )
    )  # fmt: skip
    # NUL, which PostgreSQL refuses in any text: in a list filter, a search.
    nul = (("kind", "\x00"), ("q", "a\x00"))
    for template in TEMPLATES:
        valid = [
            (world.valid(template, p) or ["1"])[0] if isinstance(p, Param) else _free_example(p)
            for p in template.params()
        ]
        wrong = [
            str(2**63) if isinstance(p, Param) else _free_example(p) for p in template.params()
        ]
        path = template.render(valid)
        for role in ROLES:
            for method in ("GET", "POST"):
                body = Body("urlencoded", malformed)
                check(world, Request(role, method, path, query=malformed, body=body))
            check(world, Request(role, "GET", template.render(wrong), query=malformed))
        check(world, Request("admin", "GET", path, query=nul))


def _free_example(piece: Free) -> str:
    """A value the admin's regex patterns match: an app's label, or a page it lacks."""
    return "boards" if "app_label" in piece.regex else "no/such/page/"


FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,  # nothing written into the working tree; a failure prints its blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# Anonymous requests are mostly sent to the login page: fewer of them.
@pytest.mark.parametrize(("role", "examples"), [("admin", 200), ("member", 200), ("anonymous", 60)])
def test_random_requests_never_answer_5xx_and_keep_the_board_whole(world, role, examples):
    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        template = data.draw(st.sampled_from(TEMPLATE_DRAWS), label="pattern")
        check(world, data.draw(requests(world, role, template), label="request"))

    run()


def test_sequences_of_board_writes_keep_the_board_whole(world):
    """A few writes in a row, each by the admin (who may override a WIP limit) or the
    member, most of them as the board posts them: cards really move, close, reopen and
    hand off, and the invariants are checked after each."""

    @settings(FUZZ_SETTINGS, max_examples=100)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        roles = data.draw(st.lists(st.sampled_from(["admin", "member"]), min_size=1, max_size=6))
        check(world, *(data.draw(board_writes(world, role), label="write") for role in roles))

    run()
