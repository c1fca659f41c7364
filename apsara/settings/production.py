"""Production: secrets and hosts are required; nothing here that a developer cannot reproduce by env."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")  # no default: refuse to start without it
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")  # no default
if not SECRET_KEY or not ALLOWED_HOSTS:
    raise ValueError("DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS must be set in production.")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
