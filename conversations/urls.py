"""Page routes (server-rendered). The JSON API lives in conversations/api_urls.py, mounted at /api/."""

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, path

from conversations import converters, views  # noqa: F401  (converters registers <public_id:…>)
from conversations.forms import LoginForm

urlpatterns: list[URLPattern] = [
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.conversation_list, name="conversation-list"),
    path("c/new/", views.conversation_new, name="conversation-new"),
    path("c/<public_id:conversation_id>/", views.conversation_detail, name="conversation-detail"),
    path("c/<public_id:conversation_id>/messages/", views.conversation_messages, name="conversation-messages"),
    path("c/<public_id:conversation_id>/rename/", views.conversation_rename, name="conversation-rename"),
    path("c/<public_id:conversation_id>/delete/", views.conversation_delete, name="conversation-delete"),
]
