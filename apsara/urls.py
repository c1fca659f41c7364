"""URL configuration: pages, JSON API, admin, live health and metrics."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("live.api_urls")),
    path("api/", include("conversations.api_urls")),
    path("", include("conversations.urls")),
    path("", include("live.urls")),
]
