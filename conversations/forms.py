"""Forms for the pages: sign up, rename."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from conversations.models import Conversation, User


class SignUpForm(UserCreationForm):
    """Choose a username and a password (twice); the user itself is created by `user_create`."""

    class Meta:
        model = User
        fields = ("username",)


class ConversationRenameForm(forms.Form):
    title = forms.CharField(max_length=Conversation._meta.get_field("title").max_length, strip=True)
