from django.apps import AppConfig


class VsmConfig(AppConfig):
    name = "vsm"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Value streams"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from vsm.accounts import session_stamp_login

        user_logged_in.connect(session_stamp_login, dispatch_uid="vsm.session_stamp_login")
