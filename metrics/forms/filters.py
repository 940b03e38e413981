"""The dashboard's filters, kept in the URL: cycle, channel and date range."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import cast

from django import forms
from django.utils import timezone

from metrics.fold.timeline import metrics_zone
from metrics.selectors.query import WINDOW_WEEKS, MetricsQuery, stream_first_week, week_start
from vsm.models import ValueStream

# The longest range a page reads: two years of weeks.
MAX_WEEKS = 104
# No event is older (boards.services.clock.event_time refuses earlier times).
EARLIEST = date(2000, 1, 1)
NO_CHANNEL = "0"


class DashboardFilterForm(forms.Form):
    """Cycle, channel and a date range; every field optional.

    The range is widened to whole ISO weeks (settings.TIME_ZONE): from the Monday of
    ``start``'s week to ``end``. A range that ends on a Sunday ends with that full week;
    otherwise ``end``'s week is the one "so far", up to ``end``. Without a range: the
    last 12 full weeks and this week so far; without ``start``, 12 full weeks before
    ``end``'s week.
    """

    cycle = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    channel = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    start = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Default: 12 full weeks before the end's week.",
    )
    end = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Default: today.",
    )

    def __init__(self, data, *, stream: ValueStream, cycles, channels, now: datetime | None = None):
        super().__init__(data)
        self.stream = stream
        self.now = now or timezone.now()
        # self.fields holds copies of the TypedChoiceFields above, typed as plain Fields.
        cycle_field = cast(forms.TypedChoiceField, self.fields["cycle"])
        channel_field = cast(forms.TypedChoiceField, self.fields["channel"])
        cycle_field.choices = [("", "All cycles")] + [(c.pk, c.name) for c in cycles]
        channel_field.choices = (
            [("", "All channels")]
            + [(c.pk, c.name) for c in channels]
            + [(NO_CHANNEL, "No channel")]
        )
        for name in ("start", "end"):
            self.fields[name].widget.attrs.update(
                min=EARLIEST.isoformat(), max=self.today.isoformat()
            )

    @property
    def today(self) -> date:
        return self.now.astimezone(metrics_zone()).date()

    def clean_start(self) -> date | None:
        return self._in_range(self.cleaned_data.get("start"), "starts")

    def clean_end(self) -> date | None:
        return self._in_range(self.cleaned_data.get("end"), "ends")

    def _in_range(self, day: date | None, verb: str) -> date | None:
        if day is None:
            return None
        if day < EARLIEST:
            raise forms.ValidationError(f"The range {verb} on {EARLIEST:%-d %b %Y} or later.")
        if day > self.today:
            raise forms.ValidationError(
                f"The range {verb} today ({self.today:%-d %b %Y}) at the latest."
            )
        return day

    def clean(self):
        super().clean()
        data = self.cleaned_data  # what Form.clean returns
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and start > end:
            self.add_error("start", "The range starts on or before its last day.")
        elif start is not None and self._weeks(start, end or self.today) > MAX_WEEKS:
            self.add_error("start", f"A range spans at most {MAX_WEEKS} weeks.")
        return data

    def _after(self, end: date) -> date:
        """The first day after the range's full weeks: the Monday after a past Sunday,
        else ``end``'s own Monday (its week is the one so far)."""
        if end.weekday() == 6 and end < self.today:
            return end + timedelta(days=1)
        return week_start(end)

    def _weeks(self, start: date, end: date) -> int:
        return (self._after(end) - week_start(start)).days // 7

    def query(self) -> MetricsQuery:
        """The query the valid filters ask for (invalid fields fall back to defaults:
        the page shows their errors)."""
        data = self.cleaned_data if self.is_bound else {}
        errors = self.errors if self.is_bound else {}
        end = data.get("end") if "end" not in errors else None
        start = data.get("start") if "start" not in errors else None
        now = self.now
        if end is not None and end < self.today:
            now = datetime.combine(end + timedelta(days=1), time.min, tzinfo=metrics_zone())
            if end.weekday() != 6:
                # The last instant of that day: its week is the one so far. (A Sunday
                # closes a full week: the window's present is the next Monday.)
                now -= timedelta(microseconds=1)
        if start is not None:
            # 0 when the range lies within one week: no full week, only "so far".
            weeks = self._weeks(start, end or self.today)
        else:
            # Weeks before the stream existed would count as zeros in the averages and
            # the process limits: a young stream's window starts at its first week.
            first = stream_first_week(self.stream)
            weeks = min(WINDOW_WEEKS, max(0, self._weeks(first, end or self.today)))
        return MetricsQuery(
            stream=self.stream,
            now=now,
            weeks=weeks,
            cycle_id=data.get("cycle") if "cycle" not in errors else None,
            channel_key=data.get("channel") if "channel" not in errors else None,
        )
