from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "intake"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Intake"

    def ready(self) -> None:
        # Register the tasks in every process (web too), so that "stream changed",
        # sent by name from vsm.events, runs in-process when tasks are eager.
        from intake import tasks  # noqa: F401
