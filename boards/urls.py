from django.urls import path

from boards import views

app_name = "boards"

urlpatterns = [
    path("", views.stream_list, name="stream-list"),
    path("<slug:stream_slug>/board/", views.board, name="board"),
    path(
        "<slug:stream_slug>/columns/<int:column_id>/cards/",
        views.column_more,
        name="column-more",
    ),
]
