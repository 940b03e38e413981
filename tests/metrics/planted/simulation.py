"""The simulation of a planted-constraint stream (see the package's docstring)."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, NamedTuple

from boards.models import Outcome
from boards.services import DEFAULT_COLUMNS, DEFAULT_CYCLES
from metrics.selectors import WINDOW_WEEKS, week_start
from vsm.models import ChannelKind

NOW = datetime(2025, 6, 11, 15, 0, tzinfo=UTC)  # a Wednesday
SIM_DAYS = 133  # 19 weeks
SIM_START = NOW - timedelta(days=SIM_DAYS)
COLUMNS_PER_CYCLE = len(DEFAULT_COLUMNS)
COLUMN_COUNT = len(DEFAULT_CYCLES) * COLUMNS_PER_CYCLE
POSITION_NAMES = tuple(
    f"{cycle} / {column}" for cycle in DEFAULT_CYCLES for column, _level, _limit in DEFAULT_COLUMNS
)
DEMAND_PER_DAY = (2.0, 16.0)  # low * (high / low) ** u**3: most streams small, a few large
CONSTRAINT_UTILISATION = (0.84, 0.99)
OTHER_UTILISATION = (0.3, 0.6)
LOSS_PROBABILITY = (0.01, 0.04)
CUSTOMER_WAIT_DAYS = (3.0, 8.0)
BATCH_SIZE = 2000
_US_PER_DAY = 86_400_000_000

Role = Literal["constraint", "work", "customer_wait"]
Kind = Literal["enter", "move", "handoff", "won", "lost"]


def _window_start(now: datetime) -> float:
    """Start of the metrics window (WINDOW_WEEKS full ISO weeks before now's week, then
    that week so far; days in UTC), in simulated days since SIM_START."""
    monday = week_start(now.date()) - timedelta(weeks=WINDOW_WEEKS)
    start = datetime.combine(monday, datetime.min.time(), tzinfo=UTC)
    return (start - SIM_START).total_seconds() / 86_400


WINDOW_START_DAY = _window_start(NOW)
WINDOW_DAYS = SIM_DAYS - WINDOW_START_DAY


@dataclass(frozen=True)
class ColumnPlan:
    role: Role
    workers: int
    mean_service_days: float
    service_shape: float  # gamma shape k: coefficient of variation 1/sqrt(k)
    loss_probability: float
    wip_limit: int | None
    arrival_rate: float  # lambda_j: planned demand per day reaching this column
    planned_utilisation: float  # lambda_j * S_j / c_j


@dataclass(frozen=True)
class StreamPlan:
    seed: int
    constraint: int  # position 0..11 in flow order
    constraint_limited: bool
    demand_per_day: float
    columns: tuple[ColumnPlan, ...]

    @property
    def label(self) -> str:
        half = "limited" if self.constraint_limited else "unlimited"
        return f"seed {self.seed}: {POSITION_NAMES[self.constraint]} ({half})"


def _comfortable_limit(mean_wip: float) -> int:
    return math.ceil(mean_wip + 4 * math.sqrt(mean_wip) + 3)


def plan_stream(*, seed: int, constraint: int, constraint_limited: bool) -> StreamPlan:
    """Draw a stream's demand, columns and WIP limits around one planted constraint."""
    rng = random.Random(f"planted-plan-{seed}")
    low, high = DEMAND_PER_DAY
    demand = low * (high / low) ** (rng.random() ** 3)
    losses = [rng.uniform(*LOSS_PROBABILITY) for _ in range(COLUMN_COUNT)]
    others = [j for j in range(COLUMN_COUNT) if j != constraint]
    customer_wait = set(rng.sample(others, rng.randint(2, 4)))
    if constraint + 1 < COLUMN_COUNT and rng.random() < 0.5:
        customer_wait.add(constraint + 1)

    columns = []
    alive = demand
    for j in range(COLUMN_COUNT):
        if j == constraint:
            role: Role = "constraint"
            workers = rng.choice((1, 1, 2, 2, 3))
            rho = rng.uniform(*CONSTRAINT_UTILISATION)
            service = rho * workers / alive
            shape = rng.uniform(1.5, 3.0)
            limit = workers + rng.choice((0, 1)) if constraint_limited else None
        elif j in customer_wait:
            role = "customer_wait"
            service = rng.uniform(*CUSTOMER_WAIT_DAYS)
            workers = max(2, round(alive * service / rng.uniform(*OTHER_UTILISATION)))
            rho = alive * service / workers
            shape = rng.uniform(1.0, 2.0)
            limit = None if rng.random() < 0.35 else _comfortable_limit(rho * workers)
        else:
            role = "work"
            workers = rng.choice((1, 1, 2, 2, 3, 4))
            rho = rng.uniform(*OTHER_UTILISATION)
            service = rho * workers / alive
            shape = rng.uniform(1.5, 4.0)
            limit = None if rng.random() < 0.35 else _comfortable_limit(rho * workers)
        columns.append(
            ColumnPlan(
                role=role,
                workers=workers,
                mean_service_days=service,
                service_shape=shape,
                loss_probability=losses[j],
                wip_limit=limit,
                arrival_rate=alive,
                planned_utilisation=rho,
            )
        )
        alive *= 1 - losses[j]
    return StreamPlan(
        seed=seed,
        constraint=constraint,
        constraint_limited=constraint_limited,
        demand_per_day=demand,
        columns=tuple(columns),
    )


class PlantedEvent(NamedTuple):
    at_us: int  # microseconds since SIM_START, strictly increasing within a stream
    card: int  # index of the card in Simulation.cards
    kind: Kind
    from_column: int | None  # positions 0..11
    to_column: int


@dataclass(frozen=True)
class PlantedCard:
    column: int  # where it is now, or where it closed
    outcome: Outcome
    created_us: int
    column_entered_us: int
    updated_us: int
    closed_us: int | None
    events: int
    channel: int | None  # index into CHANNELS, None for no channel
    estimated_value: Decimal


@dataclass(frozen=True)
class ColumnStats:
    """What the simulation itself saw in a column over the metrics window."""

    position: int
    name: str
    role: Role
    workers: int
    wip_limit: int | None
    planned_utilisation: float
    utilisation: float  # busy worker time / (workers x window)
    mean_wip: float
    mean_queue: float  # cards not being worked on: waiting for a worker or for room next
    at_limit_share: float | None  # share of the window with WIP >= limit
    blocked_share: float  # share of the window with finished work waiting for room next
    departures_per_day: float
    mean_days_in_column: float | None  # visits that ended in the window


@dataclass(frozen=True)
class Simulation:
    plan: StreamPlan
    cards: tuple[PlantedCard, ...]
    events: tuple[PlantedEvent, ...]
    columns: tuple[ColumnStats, ...]
    backlog_mean: float  # prospects waiting outside the board, over the window
    backlog_share: float  # share of the window with prospects waiting outside the board
    backlog_at_end: int

    @property
    def constraint(self) -> int:
        return self.plan.constraint

    @property
    def upstream_blocked_share(self) -> float:
        """Share of the window in which work waited to enter the planted column: finished
        cards blocked in the column before it, or prospects outside the board."""
        if self.constraint == 0:
            return self.backlog_share
        return self.columns[self.constraint - 1].blocked_share

    @property
    def busiest(self) -> int:
        """The column with the highest measured utilisation: the simulation's own view of
        the constraint."""
        return max(range(COLUMN_COUNT), key=lambda j: self.columns[j].utilisation)


CHANNELS: tuple[tuple[str, ChannelKind], ...] = (
    ("Web form", ChannelKind.WEB_FORM),
    ("Referral", ChannelKind.REFERRAL),
)
_CHANNEL_WEIGHTS = (0.6, 0.3, 0.1)  # the last one: no channel


@dataclass
class _ColumnState:
    workers: int
    wip_limit: int | None
    waiting: deque[int] = field(default_factory=deque)  # not yet served, arrival order
    done: deque[int] = field(default_factory=deque)  # finished, waiting for room next
    busy: int = 0
    wip: int = 0
    last: float = 0.0
    busy_time: float = 0.0
    wip_time: float = 0.0
    queue_time: float = 0.0
    at_limit_time: float = 0.0
    blocked_time: float = 0.0
    departures: int = 0
    visit_days: float = 0.0
    visits: int = 0

    def has_room(self) -> bool:
        return self.wip_limit is None or self.wip < self.wip_limit


class _Simulator:
    def __init__(self, plan: StreamPlan) -> None:
        self.plan = plan
        self.rng = random.Random(f"planted-flow-{plan.seed}")
        self.attributes = random.Random(f"planted-cards-{plan.seed}")
        self.columns = [_ColumnState(c.workers, c.wip_limit) for c in plan.columns]
        self.backlog: deque[int] = deque()
        self.backlog_last = 0.0
        self.backlog_time = 0.0
        self.backlog_busy_time = 0.0
        self.arrivals = 0
        self.heap: list[tuple[float, int, int, int]] = []  # (time, seq, column, card)
        self.seq = 0
        self.events: list[PlantedEvent] = []
        self.last_us = -1
        # Per card (index = arrival order = entry order, the backlog being FIFO).
        self.column: list[int] = []
        self.created: list[int] = []
        self.column_entered: list[float] = []
        self.column_entered_us: list[int] = []
        self.closed: list[tuple[Outcome, int] | None] = []
        self.event_count: list[int] = []

    # Time integrals over the metrics window, taken before every change of state.
    def _touch(self, j: int, t: float) -> None:
        column = self.columns[j]
        start = max(column.last, WINDOW_START_DAY)
        if t > start:
            dt = t - start
            column.busy_time += column.busy * dt
            column.wip_time += column.wip * dt
            column.queue_time += (column.wip - column.busy) * dt
            if column.wip_limit is not None and column.wip >= column.wip_limit:
                column.at_limit_time += dt
            if column.done:
                column.blocked_time += dt
        column.last = t

    def _touch_backlog(self, t: float) -> None:
        start = max(self.backlog_last, WINDOW_START_DAY)
        if t > start:
            self.backlog_time += len(self.backlog) * (t - start)
            if self.backlog:
                self.backlog_busy_time += t - start
        self.backlog_last = t

    def _schedule(self, t: float, column: int, card: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, column, card))

    def _record(self, t: float, card: int, kind: Kind, frm: int | None, to: int) -> int:
        at_us = max(round(t * _US_PER_DAY), self.last_us + 1)
        self.last_us = at_us
        self.events.append(PlantedEvent(at_us, card, kind, frm, to))
        self.event_count[card] += 1
        return at_us

    def _leave(self, j: int, card: int, t: float) -> None:
        column = self.columns[j]
        column.wip -= 1
        if t >= WINDOW_START_DAY:
            column.departures += 1
            column.visit_days += t - self.column_entered[card]
            column.visits += 1

    def _admit(self, j: int, card: int, t: float, at_us: int) -> None:
        self._touch(j, t)
        self.columns[j].wip += 1
        self.columns[j].waiting.append(card)
        self.column[card] = j
        self.column_entered[card] = t
        self.column_entered_us[card] = at_us
        self._start_service(j, t)

    def _start_service(self, j: int, t: float) -> None:
        column, plan = self.columns[j], self.plan.columns[j]
        while column.busy < column.workers and column.waiting:
            self._touch(j, t)
            card = column.waiting.popleft()
            column.busy += 1
            scale = plan.mean_service_days / plan.service_shape
            self._schedule(t + self.rng.gammavariate(plan.service_shape, scale), j, card)

    def _pull_into(self, j: int, t: float) -> None:
        """Fill column j from the column before it (or the backlog) while it has room;
        each card pulled frees room in its own column, which pulls in turn."""
        while self.columns[j].has_room():
            if j == 0:
                if not self.backlog:
                    return
                self._touch_backlog(t)
                card = self.backlog.popleft()
                self._new_card(card)
                at_us = self._record(t, card, "enter", None, 0)
                self.created.append(at_us)
            else:
                source = self.columns[j - 1]
                if not source.done:
                    return
                self._touch(j - 1, t)
                card = source.done.popleft()
                self._leave(j - 1, card, t)
                kind: Kind = "handoff" if j % COLUMNS_PER_CYCLE == 0 else "move"
                at_us = self._record(t, card, kind, j - 1, j)
            self._admit(j, card, t, at_us)
            if j > 0:
                self._pull_into(j - 1, t)

    def _new_card(self, card: int) -> None:
        assert card == len(self.column)
        self.column.append(0)
        self.column_entered.append(0.0)
        self.column_entered_us.append(0)
        self.closed.append(None)
        self.event_count.append(0)

    def _arrive(self, t: float) -> None:
        self._touch_backlog(t)
        self.backlog.append(self.arrivals)
        self.arrivals += 1
        self._pull_into(0, t)
        self._schedule(t + self.rng.expovariate(self.plan.demand_per_day), -1, -1)

    def _finish(self, j: int, card: int, t: float) -> None:
        column, plan = self.columns[j], self.plan.columns[j]
        self._touch(j, t)
        column.busy -= 1
        if self.rng.random() < plan.loss_probability:
            outcome, kind = Outcome.LOST, "lost"
        elif j == COLUMN_COUNT - 1:
            outcome, kind = Outcome.WON, "won"
        else:
            column.done.append(card)
            self._start_service(j, t)
            self._pull_into(j + 1, t)
            return
        self._leave(j, card, t)
        self.closed[card] = (outcome, self._record(t, card, kind, j, j))
        self._start_service(j, t)
        self._pull_into(j, t)

    def run(self) -> Simulation:
        self._schedule(self.rng.expovariate(self.plan.demand_per_day), -1, -1)
        while self.heap and self.heap[0][0] < SIM_DAYS:
            t, _, j, card = heapq.heappop(self.heap)
            if j < 0:
                self._arrive(t)
            else:
                self._finish(j, card, t)
        for j in range(COLUMN_COUNT):
            self._touch(j, SIM_DAYS)
        self._touch_backlog(SIM_DAYS)
        return Simulation(
            plan=self.plan,
            cards=self._cards(),
            events=tuple(self.events),
            columns=self._stats(),
            backlog_mean=self.backlog_time / WINDOW_DAYS,
            backlog_share=self.backlog_busy_time / WINDOW_DAYS,
            backlog_at_end=len(self.backlog),
        )

    def _cards(self) -> tuple[PlantedCard, ...]:
        cards = []
        last_event: dict[int, int] = {}
        for event in self.events:
            last_event[event.card] = event.at_us
        for card in range(len(self.column)):
            closed = self.closed[card]
            channel = self.attributes.choices((0, 1, None), _CHANNEL_WEIGHTS)[0]
            value = min(self.attributes.lognormvariate(8.5, 1.0), 9_999_999)
            cards.append(
                PlantedCard(
                    column=self.column[card],
                    outcome=closed[0] if closed else Outcome.OPEN,
                    created_us=self.created[card],
                    column_entered_us=self.column_entered_us[card],
                    updated_us=last_event[card],
                    closed_us=closed[1] if closed else None,
                    events=self.event_count[card],
                    channel=channel,
                    estimated_value=Decimal(f"{value:.2f}"),
                )
            )
        return tuple(cards)

    def _stats(self) -> tuple[ColumnStats, ...]:
        stats = []
        for j, (state, plan) in enumerate(zip(self.columns, self.plan.columns, strict=True)):
            stats.append(
                ColumnStats(
                    position=j,
                    name=POSITION_NAMES[j],
                    role=plan.role,
                    workers=plan.workers,
                    wip_limit=plan.wip_limit,
                    planned_utilisation=plan.planned_utilisation,
                    utilisation=state.busy_time / (plan.workers * WINDOW_DAYS),
                    mean_wip=state.wip_time / WINDOW_DAYS,
                    mean_queue=state.queue_time / WINDOW_DAYS,
                    at_limit_share=(
                        state.at_limit_time / WINDOW_DAYS if plan.wip_limit is not None else None
                    ),
                    blocked_share=state.blocked_time / WINDOW_DAYS,
                    departures_per_day=state.departures / WINDOW_DAYS,
                    mean_days_in_column=(state.visit_days / state.visits if state.visits else None),
                )
            )
        return tuple(stats)


def simulate(plan: StreamPlan) -> Simulation:
    """Run a stream's plan from an empty board at SIM_START to NOW."""
    return _Simulator(plan).run()


def planted_plans(seeds_per_case: int = 3) -> list[StreamPlan]:
    """Every position x {limited, unlimited} x seeds_per_case, with distinct seeds."""
    return [
        plan_stream(
            seed=1000 * replicate + 100 * int(limited) + position,
            constraint=position,
            constraint_limited=limited,
        )
        for replicate in range(1, seeds_per_case + 1)
        for limited in (True, False)
        for position in range(COLUMN_COUNT)
    ]


def planted_simulations(seeds_per_case: int = 3) -> tuple[Simulation, ...]:
    """The standard set of planted streams, simulated (about 5 s; the same every time)."""
    return tuple(simulate(plan) for plan in planted_plans(seeds_per_case))


def ground_truth(seeds_per_case: int = 3) -> list[dict]:
    """Per stream, for tuning: the planted column, the simulation's busiest column and
    its per-column statistics over the metrics window."""
    return [
        {
            "label": simulation.plan.label,
            "seed": simulation.plan.seed,
            "constraint": simulation.constraint,
            "constraint_name": POSITION_NAMES[simulation.constraint],
            "constraint_limited": simulation.plan.constraint_limited,
            "demand_per_day": round(simulation.plan.demand_per_day, 2),
            "busiest": simulation.busiest,
            "cards": len(simulation.cards),
            "events": len(simulation.events),
            "backlog_mean": round(simulation.backlog_mean, 2),
            "backlog_at_end": simulation.backlog_at_end,
            "upstream_blocked_share": round(simulation.upstream_blocked_share, 3),
            "columns": simulation.columns,
        }
        for simulation in planted_simulations(seeds_per_case)
    ]


def format_stats(simulation: Simulation) -> str:
    """A table of the simulation's per-column statistics, the planted column starred."""
    plan = simulation.plan
    lines = [
        f"{plan.label}: demand {plan.demand_per_day:.2f}/day, {len(simulation.cards)} cards, "
        f"{len(simulation.events)} events, backlog outside the board mean "
        f"{simulation.backlog_mean:.1f} (at the end {simulation.backlog_at_end}); work blocked "
        f"before the planted column {simulation.upstream_blocked_share:.0%} of the window",
        f"  {'column':34} {'role':13} {'c':>3} {'limit':>5} {'rho plan':>8} {'util':>5} "
        f"{'WIP':>6} {'queue':>6} {'@limit':>6} {'blocked':>7} {'days':>6}",
    ]
    for stats in simulation.columns:
        mark = "*" if stats.position == plan.constraint else " "
        at_limit = f"{stats.at_limit_share:.2f}" if stats.at_limit_share is not None else "-"
        days = f"{stats.mean_days_in_column:.2f}" if stats.mean_days_in_column is not None else "-"
        lines.append(
            f"{mark} {stats.name:34} {stats.role:13} {stats.workers:>3} "
            f"{stats.wip_limit if stats.wip_limit is not None else '-':>5} "
            f"{stats.planned_utilisation:>8.2f} {stats.utilisation:>5.2f} {stats.mean_wip:>6.1f} "
            f"{stats.mean_queue:>6.1f} {at_limit:>6} {stats.blocked_share:>7.2f} {days:>6}"
        )
    return "\n".join(lines)
