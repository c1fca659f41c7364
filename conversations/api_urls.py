"""JSON API routes (mounted at /api/). Paths follow seed 002: no trailing slashes."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import api, converters  # noqa: F401  (converters registers <public_id:…>)

urlpatterns = [
    path("conversations", api.ConversationListApi.as_view(), name="api-conversation-list"),
    path("conversations/<public_id:conv_id>", api.ConversationDetailApi.as_view(), name="api-conversation-detail"),
    path("conversations/<public_id:conv_id>/messages", api.MessageListApi.as_view(), name="api-message-list"),
    path("conversations/<public_id:conv_id>/live-turns", api.LiveTurnApi.as_view(), name="api-conversation-live-turns"),
    path("ai/generate", api.GenerateApi.as_view(), name="api-generate"),
    path("files/<public_id:file_id>/download", api.FileDownloadApi.as_view(), name="api-file-download"),
    path("me/talk-settings", api.TalkSettingsApi.as_view(), name="api-talk-settings"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
