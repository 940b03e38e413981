from django.apps import AppConfig


class PdcaConfig(AppConfig):
    name = "pdca"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "PDCA cycles"
