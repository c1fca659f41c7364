from django.apps import AppConfig


class GeminiConfig(AppConfig):
    name = "gemini"
    verbose_name = "Gemini"

    def ready(self) -> None:
        from gemini import checks  # noqa: F401  (registers the system checks)
