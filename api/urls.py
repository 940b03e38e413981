"""The REST API, version 1, under /api/v1/ (mounted at /api/ by vsm.urls)."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView

from api import converters  # noqa: F401 - registers api_row_id
from api.exceptions import api_not_found
from api.views import cards, docs, metrics, streams

app_name = "api"

stream = "v1/streams/<api_row_id:stream_id>"
card = f"{stream}/cards/<api_row_id:card_id>"
urlpatterns = [
    path("v1/schema/", login_not_required(SpectacularAPIView.as_view()), name="schema"),
    path("v1/docs/", docs.api_docs, name="docs"),
    path("v1/token/", streams.TokenInfo.as_view(), name="token"),
    path(f"{stream}/", streams.StreamDetail.as_view(), name="stream-detail"),
    path(f"{stream}/prospects/", cards.ProspectCreate.as_view(), name="prospect-create"),
    path(f"{stream}/cards/", cards.CardList.as_view(), name="card-list"),
    path(f"{card}/", cards.CardDetail.as_view(), name="card-detail"),
    path(f"{card}/history/", cards.CardHistory.as_view(), name="card-history"),
    path(f"{card}/move/", cards.CardMove.as_view(), name="card-move"),
    path(f"{card}/handoff/", cards.CardHandoff.as_view(), name="card-handoff"),
    path(f"{card}/close/", cards.CardClose.as_view(), name="card-close"),
    path(f"{card}/reopen/", cards.CardReopen.as_view(), name="card-reopen"),
    path(f"{stream}/metrics/", metrics.MetricsSummary.as_view(), name="metrics"),
    path(
        f"{stream}/metrics/charts/<slug:chart_key>/",
        metrics.MetricsChart.as_view(),
        name="metrics-chart",
    ),
    # Anything else under /api/ (a newline in the path too): the API's 404, not the site's.
    re_path(
        r"^(?P<path>[\s\S]*)\Z",
        csrf_exempt(login_not_required(api_not_found)),
        name="not-found",
    ),
]
