from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Metrics"

    def ready(self) -> None:
        # Register the tasks in every process (web too), so that "stream changed",
        # sent by name from vsm.events, runs in-process when tasks are eager.
        from metrics import tasks  # noqa: F401
