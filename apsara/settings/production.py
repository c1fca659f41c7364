"""Production: secrets and hosts are required; nothing here that a developer cannot reproduce by env."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

# What production refuses to start without (no defaults). Checked together, so that one message names every missing
# variable (`python -m apsara.serve` prints it as one line); README.md and docs/deploy.md list them.
REQUIRED = {  # name: an example value, for the message
    "DJANGO_SECRET_KEY": '"$(openssl rand -hex 32)"',
    "DJANGO_ALLOWED_HOSTS": "example.org",
}
_missing = [name for name in REQUIRED if not env.str(name, default="").strip()]
if _missing:
    raise ImproperlyConfigured(
        f"missing environment variable(s) {', '.join(_missing)}: set them before starting, e.g. "
        f"export {' '.join(f'{name}={REQUIRED[name]}' for name in _missing)} (see README.md, docs/deploy.md)"
    )

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
