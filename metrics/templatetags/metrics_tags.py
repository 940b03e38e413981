"""Presentation of metric values: units and signed changes, never arithmetic."""

from __future__ import annotations

from django import template
from django.utils.html import json_script

register = template.Library()


@register.filter
def metric(value: float | None, unit: str) -> str:
    """A value in its unit: "12", "3.5 d", "40%", "12,500"; an en dash for nothing."""
    if value is None:
        return "–"
    if unit == "share":
        return f"{value * 100:.0f}%"
    if unit == "days":
        return f"{value:.1f} d"
    if unit == "money":
        return f"{value:,.0f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


@register.filter
def change(value: float | None, unit: str) -> str:
    """A signed change in the value's unit ("+3", "−1.2 d", "+5 pts"); "no change" at 0."""
    if value is None:
        return "n/a"
    if value == 0:
        return "no change"
    sign = "+" if value > 0 else "−"
    if unit == "share":
        return f"{sign}{abs(value) * 100:.0f} pts"
    return sign + metric(abs(value), unit)


@register.filter
def tone(value: float | None, better: str | None) -> str:
    """good, bad or flat: whether a change is good news, for the tile's colour."""
    if value is None or value == 0 or better is None:
        return "flat"
    return "good" if (value > 0) == (better == "up") else "bad"


@register.simple_tag
def chart_data(chart) -> str:
    """The chart's data in a ``<script type="application/json" id="chart-data-KEY">``."""
    return json_script(chart.to_json(), f"chart-data-{chart.key}")
