"""Refusals of the API's own: its tokens. Everything else an API caller is refused
with is a service's domain error (vsm.errors and the apps' errors), answered as JSON
by api.exceptions."""

from __future__ import annotations

from vsm.errors import NotFound


class ApiTokenNotFound(NotFound):
    code = "api_token_not_found"
    default_message = "No such API token in this value stream."
