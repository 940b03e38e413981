from django.urls import path

from boards import views

app_name = "boards"

card = "<slug:stream_slug>/cards/<int:card_id>"
urlpatterns = [
    path("", views.stream_list, name="stream-list"),
    path("<slug:stream_slug>/board/", views.board, name="board"),
    path("<slug:stream_slug>/board/poll/", views.board_poll, name="board-poll"),
    path(
        "<slug:stream_slug>/columns/<int:column_id>/cards/",
        views.column_more,
        name="column-more",
    ),
    path(
        "<slug:stream_slug>/columns/<int:column_id>/wip-limit/",
        views.column_wip_limit,
        name="column-wip-limit",
    ),
    path("<slug:stream_slug>/archive/", views.archive, name="archive"),
    path("<slug:stream_slug>/cards/new/", views.card_create, name="card-create"),
    path(f"{card}/", views.card_detail, name="card-detail"),
    path(f"{card}/move/", views.card_move, name="card-move"),
    path(f"{card}/move-to/", views.card_move_menu, name="card-move-menu"),
    path(f"{card}/handoff/", views.card_handoff, name="card-handoff"),
    path(f"{card}/edit/", views.card_edit, name="card-edit"),
    path(f"{card}/block/", views.card_block, name="card-block"),
    path(f"{card}/comments/", views.card_comment, name="card-comment"),
    path(f"{card}/close/", views.card_close, name="card-close"),
    path(f"{card}/reopen/", views.card_reopen, name="card-reopen"),
    path(f"{card}/personal-data/", views.card_personal_data, name="card-personal-data"),
    *[
        path(
            f"{card}/personal-data.{file_format}",
            views.card_personal_data_export,
            {"file_format": file_format},
            name=f"card-personal-data-{file_format}",
        )
        for file_format in ("json", "csv")
    ],
]
