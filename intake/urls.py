from django.urls import path

from intake import views

app_name = "intake"

job = "<slug:stream_slug>/import/<int:job_id>"
urlpatterns = [
    path("<slug:stream_slug>/import/", views.import_start, name="import-start"),
    path(f"{job}/", views.import_job, name="import-job"),
    path(f"{job}/mapping/", views.import_mapping, name="import-mapping"),
    path(f"{job}/preview/", views.import_preview, name="import-preview"),
    path(f"{job}/discard/", views.import_discard, name="import-discard"),
    path(f"{job}/cancel/", views.import_cancel, name="import-cancel"),
    path(f"{job}/rejected-rows.csv", views.import_rejected_rows, name="import-rejected-rows"),
    path("<slug:stream_slug>/intake/", views.intake_queue, name="queue"),
    path("<slug:stream_slug>/intake/badge/", views.intake_badge, name="badge"),
    path(
        "<slug:stream_slug>/intake/<int:item_id>/remove/",
        views.intake_item_remove,
        name="item-remove",
    ),
    path(
        "<slug:stream_slug>/intake/<int:item_id>/retry/",
        views.intake_item_retry,
        name="item-retry",
    ),
]
