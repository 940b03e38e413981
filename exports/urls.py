from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("<slug:stream_slug>/export/cards.csv", views.cards_csv, name="cards"),
    path("<slug:stream_slug>/export/move-log.csv", views.move_log_csv, name="move-log"),
    path("<slug:stream_slug>/export/metrics.zip", views.metrics_tables_zip, name="metrics"),
]
