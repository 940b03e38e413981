from django.urls import path

from webhooks import views

app_name = "webhooks"

endpoint = "<slug:stream_slug>/webhooks/<int:endpoint_id>"
urlpatterns = [
    path("<slug:stream_slug>/webhooks/", views.webhooks, name="list"),
    path(f"{endpoint}/", views.endpoint, name="endpoint"),
    path(f"{endpoint}/active/", views.endpoint_active, name="endpoint-active"),
    path(f"{endpoint}/rotate/", views.endpoint_rotate, name="endpoint-rotate"),
    path(f"{endpoint}/delete/", views.endpoint_delete, name="endpoint-delete"),
    path(
        f"{endpoint}/deliveries/<int:delivery_id>/retry/",
        views.delivery_retry,
        name="delivery-retry",
    ),
]
