"""HTTP routes of the live app (health, metrics)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
