"""Input no page can use, refused before any view reads it."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse

NUL = "\x00"


class NulRefusedMiddleware:
    """A NUL character in the path or the query string is refused with a 400.

    No text of ours holds one, and PostgreSQL refuses it in any text parameter ("cannot
    contain NUL"): a filter that passes a query parameter on unparsed (the admin's list
    filters: ``?kind=%00``) would fail the query itself, a 500. Form fields refuse a NUL
    in a posted value on their own (Django's ProhibitNullCharactersValidator), with the
    error on the field; the body is not read here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path or any(
            NUL in name or any(NUL in value for value in values)
            for name, values in request.GET.lists()
        ):
            # Answered by handler400 (the site's 400 page; under /api/ the API's JSON
            # shape), with nothing read from the database.
            raise BadRequest("A NUL character in the URL.")
        return self.get_response(request)
