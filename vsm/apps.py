from django.apps import AppConfig


class VsmConfig(AppConfig):
    name = "vsm"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Value streams"
