"""Won business per channel (Pareto)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum

from metrics.models import ChannelDay
from metrics.selectors.query import MetricsQuery
from metrics.selectors.readmodel import ChannelPareto, ChannelRow
from metrics.selectors.statistics import win_rate
from vsm.models import Channel


def channel_pareto(query: MetricsQuery) -> ChannelPareto:
    """Over the window (its first day to ``query.now``), per channel a card arrived
    through: arrivals, won (count, value: the estimated value on its final won event)
    and lost, each card once by its final state, on the day of that event; largest won
    value first, with the cumulative share and the smallest set of channels that gives
    80% of the won value. Win rate = won / (won + lost): of the channel's deals closed
    in the window, the share won (None when none closed)."""
    stream = query.stream
    names = dict(Channel.objects.filter(value_stream=stream).values_list("pk", "name"))
    window = query.window()
    days = ChannelDay.objects.filter(
        value_stream=stream, day__gte=window.start, day__lte=window.end
    )
    if query.channel_key is not None:
        days = days.filter(channel_key=query.channel_key)
    # SQLite sums decimals without their scale: quantize as the field stores them.
    cents = Decimal(1).scaleb(-ChannelDay._meta.get_field("won_value").decimal_places)
    totals = {
        row["channel_key"]: {
            "arrivals": row["arrivals"],
            "won": row["won"],
            "won_value": Decimal(row["won_value"]).quantize(cents),
            "lost": row["lost"],
        }
        for row in days.values("channel_key").annotate(
            arrivals=Sum("arrivals"), won=Sum("won"), won_value=Sum("won_value"), lost=Sum("lost")
        )
    }
    ordered = sorted(
        totals.items(), key=lambda item: (-item[1]["won_value"], -item[1]["won"], item[0])
    )
    grand_total = sum((entry["won_value"] for _, entry in ordered), Decimal(0))
    rows, cumulative, pareto = [], Decimal(0), []
    for key, entry in ordered:
        in_set = bool(grand_total) and cumulative < grand_total * Decimal("0.8")
        cumulative += entry["won_value"]
        if in_set:
            pareto.append(key)
        rows.append(
            ChannelRow(
                channel_id=key or None,
                name=names.get(key, "No channel"),
                arrivals=entry["arrivals"],
                won=entry["won"],
                lost=entry["lost"],
                won_value=entry["won_value"],
                win_rate=win_rate(entry["won"], entry["lost"]),
                cumulative_share=round(float(cumulative / grand_total), 4) if grand_total else None,
                in_pareto_80=in_set,
            )
        )
    return ChannelPareto(rows=rows, pareto_80=[names.get(k, "No channel") for k in pareto])
