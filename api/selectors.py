"""The API's reads: its tokens, a stream's layout, its cards as the API lists them, and
the rows a request names by id, each scoped to the caller's stream."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import F, Prefetch, QuerySet

from api.errors import ApiTokenNotFound
from api.models import TOKEN_PREFIX_LENGTH, ApiToken
from api.services import TOKEN_SCHEME, token_digest
from boards.errors import InvalidMove
from boards.models import Card, Column
from boards.selectors import BoardFilters, ColumnView, board_columns, stream_cycles
from pdca.errors import ControlPointNotFound
from pdca.models import ControlPoint, Criterion, Cycle
from vsm.models import Channel, LostReason, ValueStream
from vsm.services.common import ChannelNotFound
from vsm.services.lost_reasons import LostReasonNotFound

# vsm_<8 hex digits>_<43 url-safe characters>; a little slack on the secret's length.
_TOKEN = re.compile(
    rf"{TOKEN_SCHEME}(?P<prefix>[0-9a-f]{{{TOKEN_PREFIX_LENGTH}}})_[A-Za-z0-9_-]{{20,100}}"
)


def api_token_for_secret(secret: str) -> ApiToken | None:
    """The active token whose whole secret is ``secret`` (with its stream), or None: not
    a token of ours, unknown, wrong, or revoked. One query, by the prefix; the digest
    is compared in constant time."""
    match = _TOKEN.fullmatch(secret)
    if match is None:
        return None
    token = ApiToken.objects.select_related("value_stream").filter(prefix=match["prefix"]).first()
    if token is None or not hmac.compare_digest(token.secret_digest, token_digest(secret)):
        return None
    return token if token.revoked_at is None else None


def api_tokens_of_stream(*, stream: ValueStream) -> QuerySet[ApiToken]:
    """The stream's tokens, active first, then the newest."""
    return (
        ApiToken.objects.filter(value_stream=stream)
        .select_related("created_by")
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at", "-id")
    )


def api_token_of_stream(*, stream: ValueStream, token_id: int) -> ApiToken:
    """One of the stream's tokens. Raises: ApiTokenNotFound (another stream's, or none)."""
    token = ApiToken.objects.filter(pk=token_id, value_stream=stream).first()
    if token is None:
        raise ApiTokenNotFound(data={"token_id": token_id, "stream_id": stream.pk})
    return token


@dataclass(frozen=True)
class CardQuery:
    """What a card list asks for: a stream's cards, filtered as the board filters
    (``filters``: column, owner, channel, text, blocked), and by cycle and outcome
    ("open", "won", "lost"; "" for all); ``without_channel``: only the cards that came
    through no channel."""

    stream: ValueStream
    filters: BoardFilters = field(default_factory=BoardFilters)
    cycle_id: int | None = None
    outcome: str = ""
    without_channel: bool = False


def cards_listed(query: CardQuery) -> QuerySet[Card]:
    """The stream's cards that ``query`` matches, by id (the order a cursor pages in:
    stable, and new cards come last), with the rows a card's answer names."""
    cards = query.filters.apply(
        Card.objects.filter(value_stream=query.stream).select_related("column__cycle", "channel")
    )
    if query.cycle_id is not None:
        cards = cards.filter(column__cycle_id=query.cycle_id)
    if query.outcome:
        cards = cards.filter(outcome=query.outcome)
    if query.without_channel:
        cards = cards.filter(channel__isnull=True)
    return cards.order_by("id")


def cards_of_stream(*, stream: ValueStream, card_ids: Iterable[int]) -> set[int]:
    """Those of ``card_ids`` that name a card of the stream (open or closed)."""
    return set(
        Card.objects.filter(value_stream=stream, pk__in=list(card_ids))
        .order_by()
        .values_list("pk", flat=True)
    )


def prospect_channel(
    *, stream: ValueStream, channel_id: int | None = None, channel_name: str = ""
) -> Channel | None:
    """The channel a new prospect comes from, named by id or by name (case and spaces
    aside), or None when neither is given. An inactive channel is returned: the service
    refuses it with its reason.

    Raises: ChannelNotFound (not a channel of the stream, as if missing).
    """
    channels = Channel.objects.filter(value_stream=stream)
    if channel_id is not None:
        channel = channels.filter(pk=channel_id).first()
        if channel is None:
            raise ChannelNotFound(data={"channel_id": channel_id}, field="channel_id")
        return channel
    name = channel_name.strip()
    if not name:
        return None
    channel = channels.filter(name__iexact=name).order_by("-is_active", "pk").first()
    if channel is None:
        raise ChannelNotFound(
            "This value stream has no channel of that name.", field="channel_name"
        )
    return channel


def prospect_cycle(*, stream: ValueStream, cycle_id: int | None) -> int:
    """The cycle a new prospect enters: ``cycle_id`` (the service checks it is the
    stream's), else the stream's first. Raises: InvalidMove (a stream with no cycle)."""
    if cycle_id is not None:
        return cycle_id
    first = stream_cycles(stream=stream).values_list("pk", flat=True).first()
    if first is None:
        raise InvalidMove("This value stream has no cycles yet.", data={"stream_id": stream.pk})
    return first


def control_point_in_stream(*, stream: ValueStream, control_point_id: int) -> ControlPoint:
    """A control point of the stream. Raises: ControlPointNotFound (elsewhere or missing:
    its criteria are not shown to another stream's caller)."""
    control_point = (
        ControlPoint.objects.select_related("from_cycle")
        .filter(pk=control_point_id, from_cycle__value_stream=stream)
        .first()
    )
    if control_point is None:
        raise ControlPointNotFound(data={"control_point_id": control_point_id})
    return control_point


def lost_reason_in_stream(*, stream: ValueStream, lost_reason_id: int) -> LostReason:
    """A lost reason of the stream. Raises: LostReasonNotFound (elsewhere or missing)."""
    reason = LostReason.objects.filter(pk=lost_reason_id, value_stream=stream).first()
    if reason is None:
        raise LostReasonNotFound(data={"lost_reason_id": lost_reason_id}, field="lost_reason_id")
    return reason


@dataclass(frozen=True)
class CycleLayout:
    cycle: Cycle
    columns: list[ColumnView]


@dataclass(frozen=True)
class StreamLayout:
    """What a caller needs to name things in a stream: its cycles with their columns
    (open cards and WIP limits), control points with their criteria, channels and lost
    reasons."""

    stream: ValueStream
    cycles: list[CycleLayout]
    control_points: list[ControlPoint]
    channels: list[Channel]
    lost_reasons: list[LostReason]


def stream_layout(*, stream: ValueStream) -> StreamLayout:
    """The stream's layout (see StreamLayout), in eight queries whatever its size."""
    cycles = list(stream_cycles(stream=stream))
    column_ids = Column.objects.filter(cycle__value_stream=stream).values_list("pk", flat=True)
    views = board_columns(stream=stream, column_ids=list(column_ids), with_cards=False)
    by_cycle: dict[int, list[ColumnView]] = {cycle.pk: [] for cycle in cycles}
    for view in views:
        by_cycle.setdefault(view.column.cycle_id, []).append(view)
    control_points = list(
        ControlPoint.objects.filter(from_cycle__value_stream=stream)
        .prefetch_related(Prefetch("criteria", queryset=Criterion.objects.order_by("order", "pk")))
        .order_by("from_cycle__order", "to_cycle__order", "pk")
    )
    return StreamLayout(
        stream=stream,
        cycles=[CycleLayout(cycle=cycle, columns=by_cycle[cycle.pk]) for cycle in cycles],
        control_points=control_points,
        channels=list(Channel.objects.filter(value_stream=stream).order_by("name", "pk")),
        lost_reasons=list(
            LostReason.objects.filter(value_stream=stream).order_by("order", "name", "pk")
        ),
    )
