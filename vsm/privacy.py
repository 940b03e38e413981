"""Responses that carry prospects' data stay out of caches.

Every page and fragment the app renders may hold a prospect's name or e-mail, so none
may be kept by the browser's cache (Back would show it after logout), a shared proxy,
or htmx's history snapshots (switched off in static/js/htmx-config.js). One URL may
answer a whole page or, for htmx, a fragment of it: ``Vary: HX-Request`` keeps a cache
from serving one for the other (django-htmx's advice). Static files are answered by
WhiteNoise before this middleware, with their own long-lived caching.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_vary_headers


class NoStoreMiddleware:
    """``Cache-Control: no-store`` (with ``private`` and ``max-age=0``) on every answer
    that did not set its own caching, and ``Vary: HX-Request`` on all of them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        patch_vary_headers(response, ("HX-Request",))
        return response
