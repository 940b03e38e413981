from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Register the tasks in every process (web too), so that "stream changed",
        # sent by name from vsm.events, runs in-process when tasks are eager.
        from webhooks import tasks  # noqa: F401
