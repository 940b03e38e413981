"""Conversion through each cycle, for a cohort of cards (CardCycle rows)."""

from __future__ import annotations

from collections import defaultdict
from typing import cast

from django.db.models import Count, F, Q

from boards.models import Column
from metrics.models import CardCycle, CycleOutcome
from metrics.selectors.query import MetricsQuery
from metrics.selectors.readmodel import Conversion, ConversionStep
from pdca.models import Cycle

_FURTHER = Q(outcome__in=[CycleOutcome.HANDED_ON, CycleOutcome.WON])


def conversion_by_cycle(
    query: MetricsQuery, cycles: list[Cycle], cycle_columns: dict[int, list[Column]]
) -> dict[int, Conversion]:
    """Per cycle, the funnel of the cohort of cards that entered the cycle from the
    window's start to now (one channel's cards with ``query.channel_key``): each column,
    then the next cycle (if there is one) and won. See ConversionStep for the rates;
    never above 1, because each rate is a share of the cards of the step before.
    One query, grouped by cycle and channel."""
    width = max((len(columns) for columns in cycle_columns.values()), default=0)
    counts: dict[str, Count] = {"cohort": Count("pk")}
    aliases = {f"bit{k}": F("reached_mask").bitand(1 << k) for k in range(width)}
    for k in range(width):
        counts[f"reached{k}"] = Count("pk", filter=Q(**{f"bit{k}__gt": 0}))
        # Reached column k and went further: a later column, the next cycle, or won.
        counts[f"further{k}"] = Count(
            "pk", filter=Q(**{f"bit{k}__gt": 0}) & (Q(reached_mask__gte=1 << (k + 1)) | _FURTHER)
        )
        for outcome in (CycleOutcome.HANDED_ON, CycleOutcome.WON):
            counts[f"{outcome}{k}"] = Count("pk", filter=Q(**{f"bit{k}__gt": 0}, outcome=outcome))
    counts["handed_on"] = Count("pk", filter=Q(outcome=CycleOutcome.HANDED_ON))
    counts["won"] = Count("pk", filter=Q(outcome=CycleOutcome.WON))
    rows = CardCycle.objects.filter(
        value_stream=query.stream, entered_at__gte=query.start_moment(), entered_at__lte=query.now
    )
    if query.channel_key is not None:
        rows = rows.filter(channel_key=query.channel_key)
    grouped: dict[int, dict[int, dict[str, int]]] = defaultdict(dict)
    for row in (
        rows.alias(**aliases).values("cycle_id", "channel_key").annotate(**counts).order_by()
    ):
        # annotate(**counts) adds int counters under names the stubs cannot see.
        grouped[row["cycle_id"]][row["channel_key"]] = cast(dict[str, int], row)
    result = {}
    for position, cycle in enumerate(cycles):
        columns = cycle_columns[cycle.pk]
        has_next = position + 1 < len(cycles) and bool(cycle_columns[cycles[position + 1].pk])
        by_channel = grouped.get(cycle.pk, {})
        total: dict[str, int] = defaultdict(int)
        for counters in by_channel.values():
            for name, value in counters.items():
                if name not in ("cycle_id", "channel_key"):
                    total[name] += value
        result[cycle.pk] = Conversion(
            cohort=total["cohort"],
            all=_funnel(columns, has_next, total),
            by_channel={
                str(key): _funnel(columns, has_next, counters)
                for key, counters in sorted(by_channel.items())
            },
        )
    return result


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _funnel(columns: list[Column], has_next: bool, counts: dict[str, int]) -> list[ConversionStep]:
    cohort = counts.get("cohort", 0)
    steps = []
    for k, column in enumerate(columns):
        reached = counts.get(f"reached{k}", 0)
        if k == 0:
            next_step = _rate(reached, cohort)
        else:
            next_step = _rate(counts.get(f"further{k - 1}", 0), counts.get(f"reached{k - 1}", 0))
        steps.append(ConversionStep(column.name, reached, _rate(reached, cohort), next_step))
    last = len(columns) - 1
    exits = [("next cycle", CycleOutcome.HANDED_ON, "handed_on")] if has_next else []
    exits.append(("won", CycleOutcome.WON, "won"))
    for name, outcome, total_name in exits:
        reached = counts.get(total_name, 0)
        from_last = counts.get(f"{outcome}{last}", 0) if last >= 0 else 0
        last_reached = counts.get(f"reached{last}", 0) if last >= 0 else 0
        steps.append(
            ConversionStep(name, reached, _rate(reached, cohort), _rate(from_last, last_reached))
        )
    return steps
