from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from vsm.accounts import ThrottledPasswordChangeView
from vsm.views import healthz

# An error raised before any view (a middleware reading the session while the database
# is unreachable) is answered "try again" rather than 500, as views' are (vsm.http).
# Under /api/ both handlers answer in the API's JSON shape, elsewhere with the site's
# pages (vsm.views.server_error, Django's 400 page).
handler400 = "api.exceptions.bad_request"
handler500 = "api.exceptions.server_error"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="boards:stream-list"), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        ThrottledPasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="registration/password_changed.html"
        ),
        name="password_change_done",
    ),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("streams/", include("boards.urls")),
    path("streams/", include("metrics.urls")),
    path("streams/", include("intake.urls")),
    path("streams/", include("webhooks.urls")),
    path("streams/", include("exports.urls")),
    path("streams/", include("api.page_urls")),
    path("api/", include("api.urls")),
]
