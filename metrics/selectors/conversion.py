"""Conversion through a cycle, from the fold's all-time counters."""

from __future__ import annotations

from collections import defaultdict

from metrics.models import ColumnReachCount, CycleConversionCount
from vsm.models import ValueStream


def _reach_counts(stream: ValueStream) -> dict[tuple[int, int], int]:
    """Cards that ever reached each column, by (column, channel key): counters the
    fold keeps as it writes first reaches."""
    return {
        (column_id, channel_key): cards
        for column_id, channel_key, cards in ColumnReachCount.objects.filter(
            value_stream=stream
        ).values_list("column_id", "channel_key", "cards")
    }


def _conversion_counts(
    stream: ValueStream,
) -> tuple[dict[int, dict[int, int]], dict[int, dict[int, int]]]:
    """Per cycle, by channel key: the cards handed on (reached this cycle's first
    column and the next cycle's, under the channel on the event that first reached the
    next one; a card that entered the next cycle directly never was in this cycle's
    funnel), and the cards won while in it (each card once: won, reopened and won
    again is one card, under the channel of its first win). Counters of the fold."""
    handed_on: dict[int, dict[int, int]] = defaultdict(dict)
    won: dict[int, dict[int, int]] = defaultdict(dict)
    for cycle_id, channel_key, handed, wins in CycleConversionCount.objects.filter(
        value_stream=stream
    ).values_list("cycle_id", "channel_key", "handed_on", "won"):
        if handed:
            handed_on[cycle_id][channel_key] = handed
        if wins:
            won[cycle_id][channel_key] = wins
    return handed_on, won


def _conversion(columns, next_reached, reach_counts, won_by_channel) -> dict:
    """Of the cards that entered the cycle's first column: the share that reached each
    later column, the next cycle, and won (cumulative), and each step's share of the
    step before it (next-step). Overall and per channel."""

    def steps_for(channel_keys: set[int] | None) -> list[dict]:
        def reached(column_id: int) -> int:
            return sum(
                count
                for (cid, key), count in reach_counts.items()
                if cid == column_id and (channel_keys is None or key in channel_keys)
            )

        names = [(column.name, reached(column.pk)) for column in columns]
        if next_reached is not None:
            names.append(
                (
                    "next cycle",
                    sum(
                        n
                        for key, n in next_reached.items()
                        if channel_keys is None or key in channel_keys
                    ),
                )
            )
        won = sum(
            n for key, n in won_by_channel.items() if channel_keys is None or key in channel_keys
        )
        names.append(("won", won))
        base = names[0][1] if names else 0
        result = []
        previous = base
        for name, count in names:
            result.append(
                {
                    "step": name,
                    "reached": count,
                    "cumulative": round(count / base, 4) if base else None,
                    "next_step": round(count / previous, 4) if previous else None,
                }
            )
            previous = count
        return result

    channel_keys = {key for (_, key) in reach_counts}
    return {
        "all": steps_for(None),
        "by_channel": {str(key): steps_for({key}) for key in sorted(channel_keys)},
    }
