"""Forms for the pages: log in (the site's and the admin's), sign up, rename."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_credentials
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from conversations.login_throttling import RETRY_AFTER_ATTRIBUTE, lockout_message, lockout_remaining, login_attempt_lock
from conversations.models import Conversation, User


class LoginForm(AuthenticationForm):
    """Log in under django-axes: one attempt at a time per account and per address, and a refusal that says why."""

    def clean(self) -> dict[str, Any]:
        with login_attempt_lock(self.request, self.cleaned_data.get("username")):  # type: ignore[arg-type]
            try:
                return super().clean()
            except ValidationError as error:
                refused = error  # raised after the block: leaving it by an exception would un-count the failure
        raise refused

    def get_invalid_login_error(self) -> ValidationError:
        """Say for how long logging in is paused when axes refused the attempt, or this failure reached the limit.

        Otherwise Django's own "Please enter a correct username and password".
        """
        if self.request is None or not getattr(self.request, "axes_locked_out", False):
            return super().get_invalid_login_error()
        remaining = lockout_remaining(self.request, get_credentials(self.cleaned_data.get("username")))
        setattr(self.request, RETRY_AFTER_ATTRIBUTE, remaining)  # for LoginLockoutMiddleware's Retry-After
        return ValidationError(lockout_message(remaining), code="locked_out")


class AdminLoginForm(LoginForm, AdminAuthenticationForm):
    """The admin's login form (staff only, its own wording) with the same throttling as the site's."""


class SignUpForm(UserCreationForm):
    """Choose a username and a password (twice); the user itself is created by `user_create`."""

    class Meta:
        model = User
        fields = ("username",)


class ConversationRenameForm(forms.Form):
    title = forms.CharField(max_length=Conversation._meta.get_field("title").max_length, strip=True)
