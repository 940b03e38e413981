"""Accounts plumbing: how long a session lives, and the answer to a login refused for
too many failures (django-axes counts them; see AXES_* in vsm/settings.py)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render, resolve_url
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

# Unix times kept in the session: when it was first seen logged in, and when its expiry
# was last pushed forward.
SESSION_STARTED = "vsm_session_started"
SESSION_REFRESHED = "vsm_session_refreshed"
# Pushing the expiry forward is a write of the session row: at most this often.
SESSION_REFRESH_MAX_INTERVAL = 5 * 60


def session_refresh_interval() -> int:
    """Seconds between two pushes of a session's expiry: a tenth of the idle limit, at
    most five minutes. The idle limit holds to within this."""
    return min(SESSION_REFRESH_MAX_INTERVAL, settings.SESSION_COOKIE_AGE // 10)


def session_stamp_login(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    """At login (``user_logged_in``), stamp the new session's start: saved with the
    login's own write, rather than by the next request."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED] = request.session[SESSION_REFRESHED] = int(time.time())


class SessionLifetimeMiddleware:
    """Ends a logged-in session SESSION_COOKIE_AGE after its last request (the idle
    limit) and VSM_SESSION_MAX_AGE after it was first seen logged in.

    Django moves a session's expiry only when it saves the session, and
    SESSION_SAVE_EVERY_REQUEST would write the session row on every board poll (every
    2 s for each open board). Instead the session is marked modified, so saved with a
    new expiry, only when its last push is older than ``session_refresh_interval()``:
    one write per user per few minutes, whatever the polling.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        if SESSION_KEY in session:
            now = int(time.time())
            started = session.get(SESSION_STARTED)
            if started is None:
                session[SESSION_STARTED] = session[SESSION_REFRESHED] = now
            elif now - started >= settings.VSM_SESSION_MAX_AGE:
                logout(request)
            elif now - session.get(SESSION_REFRESHED, 0) >= session_refresh_interval():
                session[SESSION_REFRESHED] = now
        return self.get_response(request)


def _address(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # A zone index (fe80::1%eth0) is no address the database's column accepts.
    if getattr(address, "scope_id", None):
        return None
    return str(address)


def client_ip_address(request: HttpRequest) -> str | None:
    """The client's address for counting failed logins (AXES_CLIENT_IP_CALLABLE).

    Behind VSM_TRUSTED_PROXY_COUNT proxies that each append the address they were
    reached from to X-Forwarded-For, the client is that many entries from its end;
    entries before those were written by the client and are not trusted. Anything that
    is not an IP address counts as unknown (None), never as an error.
    """
    proxies = settings.VSM_TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if len(hops) >= proxies and (forwarded := _address(hops[-proxies])):
            return forwarded
    return _address(request.META.get("REMOTE_ADDR", ""))


# django-axes' column for the username counted under.
_COUNTED_USERNAME_LENGTH = 255


def login_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username failed logins are counted under (AXES_USERNAME_CALLABLE): as given,
    without NULs and cut to the column's length, so that whatever a client posts is
    counted, never a database error (the login form lets a long username through to
    authentication, which refuses it)."""
    source = credentials if credentials else getattr(request, "data", request.POST)
    username = source.get("username")
    if username is None:
        return None
    return str(username).replace("\x00", "")[:_COUNTED_USERNAME_LENGTH]


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The page for a login refused for too many failures (AXES_LOCKOUT_CALLABLE), on
    either login form: says until when, with 429 and Retry-After.

    The failure that led here was recorded now, so the cool-off counted from now is
    when logging in works again at the latest (earlier, if older failures age out)."""
    cool_off = get_cool_off(request) or settings.AXES_COOLOFF_TIME
    retry_at = timezone.now() + cool_off
    response = render(
        request,
        "registration/locked_out.html",
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "retry_at": retry_at,
            "minutes": math.ceil(cool_off.total_seconds() / 60),
        },
        status=429,
    )
    response["Retry-After"] = str(math.ceil(cool_off.total_seconds()))
    add_never_cache_headers(response)
    return response


class HtmxLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Django's ``LoginRequiredMiddleware``, with an answer htmx understands.

    A session that ended (logged out in another tab, expired) would have the next htmx
    request follow the redirect and swap the login page into the board. Instead an
    htmx request (and the board's poll, which sends ``HX-Request`` too) gets 401 with
    ``HX-Redirect`` to the login page, coming back to the page the user was on.
    """

    # A 401 for htmx is not a redirect: wider than the base class's return type.
    def handle_no_permission(  # type: ignore[override]
        self, request: HttpRequest, view_func: Callable
    ) -> HttpResponse:
        if request.headers.get("HX-Request") != "true":
            return super().handle_no_permission(request, view_func)
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        back = current.path or "/"
        if current.query:
            back += f"?{current.query}"
        login = resolve_url(self.get_login_url(view_func))
        redirect_field = self.get_redirect_field_name(view_func)
        response = HttpResponse("Your session has ended: log in again.", status=401)
        response["HX-Redirect"] = f"{login}?{urlencode({redirect_field: back})}"
        add_never_cache_headers(response)
        return response


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's password change form; a wrong current password counts as a failed login
    (django-axes listens to ``user_login_failed``), so a session cannot be used to guess
    the password without limit."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        try:
            return super().clean_old_password()
        except ValidationError:
            user_login_failed.send(
                sender=__name__,
                credentials={"username": self.user.get_username()},
                request=self.request,
            )
            raise


class ThrottledPasswordChangeView(PasswordChangeView):
    """The password change page, refused with the lockout page while the user's logins
    are (too many wrong passwords, here or on a login form)."""

    form_class = ThrottledPasswordChangeForm
    template_name = "registration/password_change.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        credentials = {"username": request.user.get_username()}
        if request.user.is_authenticated and AxesProxyHandler.is_locked(request, credentials):
            return lockout_response(request, None, credentials)
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}
