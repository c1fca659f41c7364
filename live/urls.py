"""HTTP routes of the live app (health, metrics)."""

from django.urls import path

from live import views

urlpatterns = [
    path("live/health", views.health, name="live-health"),
    path("metrics", views.metrics, name="metrics"),
]
