"""The metrics document of a stream, as typed and versioned read-model dataclasses.

Every number is defined in docs/metrics.md. Durations are in days (86,400 s); dates
are calendar days and ISO weeks (Mondays) in settings.TIME_ZONE; timestamps are aware.
A document is stored as JSON (``to_json``) in StreamMetrics and WeeklySnapshot, and read
back with ``from_json``, which also reads documents stored under earlier schema versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from pydantic import TypeAdapter

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Distribution:
    """Nearest-rank percentiles of finished intervals, in days, the number they rest on
    (``count``) and their mean. ``abandoned``: intervals of the same kind that ended with
    ``lost``; counted beside the percentiles, never in them."""

    count: int = 0
    p50: float | None = None
    p70: float | None = None
    p85: float | None = None
    p95: float | None = None
    mean: float | None = None
    abandoned: int = 0


@dataclass(frozen=True)
class WeeklySeries:
    """One value per full ISO week of the window (aligned with ``Window.weeks``) and the
    current, partial week's value so far, kept apart: it is never averaged as a week."""

    values: list[Any] = field(default_factory=list)
    so_far: Any = None


@dataclass(frozen=True)
class Window:
    """The document's period: ``weeks`` full ISO weeks (their Mondays, oldest first) and
    the current week so far (``current_week``, ``current_week_days`` days including
    today). ``start``..``end`` (inclusive) spans both; ``days`` counts them."""

    time_zone: str
    weeks: list[date]
    current_week: date
    current_week_days: int
    start: date
    end: date
    days: int


@dataclass(frozen=True)
class Signal:
    """A process-behaviour signal: ``index`` into ``Window.weeks``, and the rule."""

    index: int
    rule: str


@dataclass(frozen=True)
class XmR:
    """An XmR (process behaviour) chart of a weekly series over the full weeks.

    ``mean`` +/- 2.66 x ``average_moving_range`` are the natural process limits (the
    lower one clamped at 0: the series are counts, rates and durations);
    ``moving_range_upper`` = 3.268 x the average moving range. Source: Wheeler,
    *Understanding Variation* (1993). All None with fewer than two values.
    """

    mean: float | None = None
    upper: float | None = None
    lower: float | None = None
    average_moving_range: float | None = None
    moving_range_upper: float | None = None
    signals: list[Signal] = field(default_factory=list)


@dataclass(frozen=True)
class LittlesLaw:
    """Little's law for a column: average WIP against throughput (per day) x mean time in
    column (days). ``checked`` is False (with the ``reason``) without finished visits."""

    checked: bool
    reason: str | None = None
    average_wip: float | None = None
    throughput_x_time: float | None = None
    relative_gap: float | None = None
    disagrees: bool | None = None


@dataclass(frozen=True)
class ColumnFlow:
    """A column's flow over the window's time (the constraint's evidence).

    ``time_weighted_wip``: WIP averaged over time; ``wip_dispersion``: its variance over
    its mean (index of dispersion: about 1 for a steady delay, where cards come and go
    independently; far above 1 for a queue in front of a busy step).
    ``at_limit_share``: share of the time its WIP was at or over its WIP limit (None
    without a limit). ``blocked_share``: share
    of the time it was full while the next column (across control points) was full too.
    ``waited_cards`` came from the column before it after waiting there while it was full,
    ``waited_days_mean`` on average (``waited_days_total`` in all).
    ``days_per_card_ahead``: over its visits that ended in the window, the
    least-squares slope of a visit's length (days) on the WIP the card found on arriving:
    in a queue each card ahead adds its service time over the people serving, 1 / the
    column's capacity per day; in a delay (waiting for the customer) about 0.
    ``queue_correlation``: the Pearson correlation of the two. ``utilisation``: demand
    (visits per day) x days per card ahead = demand / capacity, the share of its
    capacity the work uses (Theory of Constraints: the constraint is the step whose
    capacity is nearest the demand).
    """

    time_weighted_wip: float = 0.0
    wip_dispersion: float | None = None
    at_limit_share: float | None = None
    blocked_share: float | None = None
    waited_cards: int = 0
    waited_days_total: float = 0.0
    waited_days_mean: float | None = None
    days_per_card_ahead: float | None = None
    queue_correlation: float | None = None
    utilisation: float | None = None


@dataclass(frozen=True)
class ColumnMetrics:
    id: int
    name: str
    cycle_id: int
    cycle: str
    knowledge_level: str
    split: str
    wip_limit: int | None
    wip_now: int
    wip_at_window_start: int
    # Mean of the end-of-day WIP of each day of the window.
    average_wip: float
    arrivals_total: int
    departures_total: int
    arrivals_weekly: WeeklySeries
    departures_weekly: WeeklySeries
    time_in_column: Distribution
    median_age_days: float | None
    blocked_now: int
    littles_law: LittlesLaw
    flow: ColumnFlow


@dataclass(frozen=True)
class ConversionStep:
    """One step of a cycle's funnel for a cohort (the cards that entered the cycle in
    the window). ``reached``: cards that reached this step at least once ("ever
    reached"; for ``won``, won is the card's final state). ``cumulative``: reached / the
    cohort. ``next_step``: of the cards that reached the step before, the share that
    reached this one or went further (a later column, the next cycle, won); for the
    exits (``next cycle``, ``won``) the step before is the cycle's last column. Never
    above 1."""

    step: str
    reached: int
    cumulative: float | None
    next_step: float | None


@dataclass(frozen=True)
class Conversion:
    cohort: int = 0
    all: list[ConversionStep] = field(default_factory=list)
    # By channel key (the channel id, "0" for no channel), as strings (JSON keys).
    by_channel: dict[str, list[ConversionStep]] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowEfficiency:
    active_days: float
    waiting_days: float
    efficiency: float | None


@dataclass(frozen=True)
class CycleMetrics:
    id: int
    name: str
    wip_now: int
    arrivals_weekly: WeeklySeries
    departures_weekly: WeeklySeries
    won_weekly: WeeklySeries
    lost_weekly: WeeklySeries
    cycle_time: Distribution
    conversion: Conversion
    flow_efficiency: FlowEfficiency | None


@dataclass(frozen=True)
class DemandVsCapacity:
    """Means per full week: arrivals (demand), won, and closed (won + lost)."""

    arrivals_per_week: float
    won_per_week: float
    departures_per_week: float


@dataclass(frozen=True)
class StreamXmR:
    won_weekly: XmR
    win_rate_weekly: XmR
    lead_time_median_weekly: XmR


@dataclass(frozen=True)
class StreamFlow:
    lead_time: Distribution
    arrivals_weekly: WeeklySeries
    won_weekly: WeeklySeries
    won_value_weekly: WeeklySeries
    lost_weekly: WeeklySeries
    win_rate_weekly: WeeklySeries
    lead_time_median_weekly: WeeklySeries
    demand_vs_capacity: DemandVsCapacity
    xmr: StreamXmR


@dataclass(frozen=True)
class AgingCard:
    card_id: int
    column_id: int
    cycle_id: int
    age_in_cycle_days: float
    age_in_column_days: float
    cycle_p85_days: float


@dataclass(frozen=True)
class Aging:
    over_cycle_p85: list[AgingCard] = field(default_factory=list)
    over_cycle_p85_count: int = 0
    open_cards: int = 0


@dataclass(frozen=True)
class ChannelRow:
    channel_id: int | None
    name: str
    arrivals: int
    won: int
    lost: int
    won_value: Decimal
    win_rate: float | None
    cumulative_share: float | None
    in_pareto_80: bool


@dataclass(frozen=True)
class ChannelPareto:
    rows: list[ChannelRow] = field(default_factory=list)
    pareto_80: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConstraintCandidate:
    """One column's constraint evidence (see docs/metrics.md, "The constraint")."""

    column_id: int
    name: str
    score: float
    at_limit_share: float | None
    limiting_share: float | None
    waited_days_mean: float | None
    waited_cards: int
    utilisation: float | None
    time_weighted_wip: float
    wip_limit: int | None
    mean_visit_days: float | None
    median_age_days: float | None
    blocked_now: int


@dataclass(frozen=True)
class Constraint:
    column_id: int | None = None
    name: str | None = None
    evidence: list[str] = field(default_factory=list)
    ranking: list[ConstraintCandidate] = field(default_factory=list)


@dataclass(frozen=True)
class QueryEcho:
    """The filters the document was computed with (None: not filtered)."""

    cycle_id: int | None = None
    channel_key: int | None = None


@dataclass(frozen=True)
class StreamMetricsDocument:
    computed_at: datetime
    window: Window
    columns: list[ColumnMetrics]
    cycles: list[CycleMetrics]
    stream: StreamFlow
    aging: Aging
    channels: ChannelPareto
    constraint: Constraint
    query: QueryEcho = field(default_factory=QueryEcho)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        """The document as JSON-ready data (dates as ISO strings, decimals as strings)."""
        return _adapter().dump_python(self, mode="json")

    @classmethod
    def from_json(cls, data: dict) -> StreamMetricsDocument:
        """Read a stored document of this or an earlier schema version.

        Raises: SchemaError if the data is no metrics document of a known version.
        """
        if not isinstance(data, dict):
            raise SchemaError(f"a metrics document is a JSON object, not {type(data).__name__}")
        version = data.get("schema_version", 1)
        if type(version) is not int or version not in (1, SCHEMA_VERSION):
            raise SchemaError(f"unknown metrics document schema version {version!r}")
        try:
            return _adapter().validate_python(_upgrade_v1(data) if version == 1 else data)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
            raise SchemaError(f"not a metrics document of schema {version}: {error!r}") from error


class SchemaError(ValueError):
    """Stored data that is no metrics document of a known schema version."""


@cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(StreamMetricsDocument)


def _series(values: list | None) -> dict:
    """A v1 weekly list held the current week as its last entry: keep it apart."""
    values = list(values or [])
    return {"values": values[:-1], "so_far": values[-1] if values else None}


def _upgrade_v1(data: dict) -> dict:
    """A schema-1 document (before 2026-11-29) in the schema-2 shape. Its weekly lists
    ended with the current week: that becomes ``so_far``. Numbers v1 did not have (flow
    over time, abandoned counts, moving-range limits) are absent (their defaults);
    v1's constraint ranking used other evidence and is not carried over. The numbers it
    has stay as schema 1 counted them (a re-won deal twice; XmR limits over 12 weeks
    with the partial one): a stored document records what was shown then."""
    window = data["window"]
    weeks = window["weeks"]
    computed = datetime.fromisoformat(data["computed_at"])
    upgraded_xmr = {
        name: {key: value for key, value in xmr.items() if key != "signals"}
        | {"signals": [s for s in xmr.get("signals", []) if s["index"] < len(weeks) - 1]}
        for name, xmr in data["stream"]["xmr"].items()
    }
    lead_weekly = [None] * len(weeks)
    return {
        "schema_version": SCHEMA_VERSION,
        "computed_at": data["computed_at"],
        "window": {
            "time_zone": "UTC",
            "weeks": weeks[:-1],
            "current_week": weeks[-1],
            "current_week_days": computed.date().weekday() + 1,
            "start": weeks[0],
            "end": computed.date().isoformat(),
            "days": window["days"],
        },
        "columns": [
            {
                **{k: v for k, v in column.items() if k != "weekly"},
                "arrivals_weekly": _series(column["weekly"]["arrivals"]),
                "departures_weekly": _series(column["weekly"]["departures"]),
                "flow": {},
            }
            for column in data["columns"]
        ],
        "cycles": [
            {
                **{k: v for k, v in cycle.items() if k != "weekly"},
                **{f"{name}_weekly": _series(cycle["weekly"][name]) for name in cycle["weekly"]},
                "conversion": {"cohort": 0, **cycle["conversion"]},
            }
            for cycle in data["cycles"]
        ],
        "stream": {
            "lead_time": data["stream"]["lead_time"],
            "arrivals_weekly": _series(data["stream"]["arrivals_weekly"]),
            "won_weekly": _series(data["stream"]["won_weekly"]),
            "won_value_weekly": _series([]),
            "lost_weekly": _series([]),
            "win_rate_weekly": _series(data["stream"]["win_rate_weekly"]),
            "lead_time_median_weekly": _series(lead_weekly),
            "demand_vs_capacity": data["stream"]["demand_vs_capacity"],
            "xmr": upgraded_xmr,
        },
        "aging": data["aging"],
        "channels": data["channels"],
        "constraint": {
            "column_id": data["constraint"]["column_id"],
            "name": data["constraint"]["name"],
            "evidence": data["constraint"]["evidence"],
            "ranking": [],
        },
    }
