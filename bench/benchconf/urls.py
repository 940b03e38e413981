"""The app's URLs (``vsm.urls``) plus the bench's floor view, never served by the app."""

from django.urls import include, path

from benchconf.views import EMPTY_POST_PATH, empty_post

handler500 = "vsm.views.server_error"

urlpatterns = [
    path(EMPTY_POST_PATH.strip("/") + "/", empty_post, name="bench-empty-post"),
    path("", include("vsm.urls")),
]
