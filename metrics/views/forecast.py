"""The dashboard's forecasts panel (docs/metrics.md, "Forecasts"): a fragment for htmx,
a page of its own without JavaScript."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from boards import selectors as board_selectors
from metrics.forms.forecast import ForecastForm, dashboard_filters
from metrics.selectors.forecast_panel import forecast_panel
from metrics.selectors.query import MetricsQuery
from metrics.views import HtmxHttpRequest
from metrics.views.dashboard import dashboard_filter_form
from vsm.actors import request_actor


@require_GET
def forecast(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    filter_form = dashboard_filter_form(request, stream)
    # Forecasts look ahead from now: of the dashboard's filters, only the channel applies.
    query = MetricsQuery.for_stream(
        stream, now=filter_form.now, channel_key=filter_form.query().channel_key
    )
    form = ForecastForm(request.GET, today=query.today)
    carried = dashboard_filters(request.GET)
    context = {
        "stream": stream,
        "form": form,
        "filter_form": filter_form,
        "carried": carried,
        "filter_query": urlencode(carried),
        "panel": forecast_panel(query, **form.chosen()),
    }
    template = "metrics/partials/forecast.html" if request.htmx else "metrics/forecast.html"
    response = render(request, template, context)
    # One URL, two answers: a cache must not hand the fragment to a full page load.
    patch_vary_headers(response, ("HX-Request",))
    return response
