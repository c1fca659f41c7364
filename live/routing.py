"""WebSocket routes."""

from django.urls import URLPattern, path

from live.consumers import LiveConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("live", LiveConsumer.as_asgi()),
    path("live/", LiveConsumer.as_asgi()),
]
