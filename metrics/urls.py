from django.urls import path, register_converter

from metrics.views import dashboard, digest, experiments, forecast, review

register_converter(review.IsoDateConverter, "isodate")

app_name = "metrics"

urlpatterns = [
    path("<slug:stream_slug>/dashboard/", dashboard.dashboard, name="dashboard"),
    path(
        "<slug:stream_slug>/dashboard/<slug:chart_key>.csv",
        dashboard.dashboard_csv,
        name="dashboard-csv",
    ),
    # Forecasts (metrics/views/forecast.py).
    path("<slug:stream_slug>/dashboard/forecast/", forecast.forecast, name="forecast"),
    # Weekly review (metrics/views/review.py).
    path("<slug:stream_slug>/review/", review.review_latest, name="review-latest"),
    path("<slug:stream_slug>/review/<isodate:week>/", review.review, name="review"),
    path(
        "<slug:stream_slug>/review/<isodate:week>/<slug:chart_key>.csv",
        review.review_csv,
        name="review-csv",
    ),
    path(
        "<slug:stream_slug>/review/<isodate:week>/entries/",
        review.review_entry_record,
        name="review-entry-record",
    ),
    path(
        "<slug:stream_slug>/review/<isodate:week>/entries/<int:entry_id>/withdraw/",
        review.review_entry_withdraw,
        name="review-entry-withdraw",
    ),
    # PDCA experiments (metrics/views/experiments.py).
    path("<slug:stream_slug>/experiments/", experiments.experiments, name="experiments"),
    path(
        "<slug:stream_slug>/experiments/<int:experiment_id>/",
        experiments.experiment,
        name="experiment",
    ),
    path(
        "<slug:stream_slug>/experiments/<int:experiment_id>/edit/",
        experiments.experiment_edit,
        name="experiment-edit",
    ),
    path(
        "<slug:stream_slug>/experiments/<int:experiment_id>/act/",
        experiments.experiment_act,
        name="experiment-act",
    ),
    *(
        path(
            f"<slug:stream_slug>/experiments/<int:experiment_id>/{step}/",
            experiments.experiment_step,
            {"step": step},
            name=f"experiment-{step}",
        )
        for step in experiments.STEPS
    ),
    # Weekly digest (metrics/views/digest.py).
    path("<slug:stream_slug>/digest/", digest.digest_subscription, name="digest-subscription"),
]
