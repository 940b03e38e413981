"""The pages about the API on the site: a stream's API tokens (mounted under
/streams/ by vsm.urls)."""

from django.urls import path

from api import converters  # noqa: F401 - registers api_row_id
from api.views import tokens

app_name = "api_pages"

urlpatterns = [
    path("<slug:stream_slug>/api-tokens/", tokens.api_tokens, name="tokens"),
    path(
        "<slug:stream_slug>/api-tokens/<api_row_id:token_id>/revoke/",
        tokens.api_token_revoke,
        name="token-revoke",
    ),
]
