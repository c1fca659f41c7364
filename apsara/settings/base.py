"""Settings shared by every environment; all values come from the environment (django-environ).

https://docs.djangoproject.com/en/5.2/ref/settings/
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env") if (BASE_DIR / ".env").exists() else None

# GENERAL
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# APPS
# ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",  # first, so `runserver` serves ASGI (websockets included)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "axes",  # login throttling; see AXES_* below
    "conversations",
    "gemini",
    "live",
    "usage",
]

MIDDLEWARE = [
    # First, so it sees every answer: errors under /api/ (an unknown URL's 404 included) get the API's JSON shape.
    "apsara.middleware.ApiErrorShapeMiddleware",
    # A query string no database can store (NUL, a lone surrogate) is a 400 before any view or admin filter runs.
    "apsara.middleware.StorableQueryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files in every environment, production included, with no reverse proxy or collectstatic needed: found
    # in the apps' static dirs at start-up (WHITENOISE_USE_FINDERS).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "conversations.login_throttling.LoginLockoutMiddleware",  # 429 + Retry-After on a login axes refused
]

ROOT_URLCONF = "apsara.urls"
ASGI_APPLICATION = "apsara.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apsara.context_processors.gemini_mode",
            ],
        },
    },
]

# AUTH
# ------------------------------------------------------------------------------
AUTH_USER_MODEL = "conversations.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conversation-list"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password is checked
    "django.contrib.auth.backends.ModelBackend",
]

# LOGIN THROTTLING: django-axes, see conversations/login_throttling.py and docs/operations.md
# ------------------------------------------------------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# Failures are counted per account and per address; either reaching the limit refuses logins for the cool-off.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Counts live in the database (atomic per row); attempts take turns per account and address (login_attempt_lock).
AXES_HANDLER = "conversations.login_throttling.LoginAttemptHandler"
AXES_RESET_ON_SUCCESS = env.bool("LOGIN_RESET_ON_SUCCESS", default=True)  # that account's failures from that address
# A refused attempt is not counted, so the cool-off runs from the last counted failure and the wait the page states
# holds; a refused attempt never reaches the password check anyway.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The client is REMOTE_ADDR unless LOGIN_TRUSTED_PROXY_COUNT says how many proxies write X-Forwarded-For.
AXES_CLIENT_IP_CALLABLE = "conversations.login_throttling.client_ip_address"
LOGIN_TRUSTED_PROXY_COUNT = env.int("LOGIN_TRUSTED_PROXY_COUNT", default=0)
# axes.W002 asks for axes' middleware, which would replace the login page; the forms say why a login was refused
# and LoginLockoutMiddleware answers 429 instead.
SILENCED_SYSTEM_CHECKS = ["axes.W002"]

# DATABASE: SQLite unless DATABASE_URL is set (postgres://… uses psycopg 3)
# ------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DATABASE_POOL", default=True):
    # Under ASGI Django's persistent connections don't help (docs: use the backend's pool instead); without a pool
    # every live session's writes opened a fresh PostgreSQL connection, about half of the database thread's time.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Each transaction takes the write lock when it begins, waiting for it (the timeout): with two writers in a
    # process (the live bridge's thread and live.lease's renewer), a deferred one that read and then wanted to write
    # would fail at once with "database is locked" instead of waiting.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
# Threads the live bridge's database calls run in, a user's calls in order on one (live/db_lanes.py). SQLite takes one
# writer at a time, so there it is one: Channels' shared thread.
LIVE_DATABASE_LANES = env.int(
    "LIVE_DATABASE_LANES", default=1 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 4
)

# CHANNEL LAYER: Redis when REDIS_URL is set, else in-memory (one process only)
# ------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
# redis-py 8 times reads out after 5 s by default, exactly channels_redis's 5 s BZPOPMIN: a reply a moment late
# raised TimeoutError out of idle consumers' channel-layer receive, and Channels closed their sockets with 1011.
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=15.0)


def _channel_layers(redis_url: str) -> dict:
    if redis_url:
        host = {"address": redis_url, "socket_timeout": REDIS_SOCKET_TIMEOUT}
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [host], "prefix": env("CHANNEL_LAYER_PREFIX", default="apsara")},
            }
        }
    return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


CHANNEL_LAYERS = _channel_layers(REDIS_URL)
# The cache holds request counters (the API's per-user rate limits): in Redis they are shared by every worker.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "apsara"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# STORAGE: audio on local disk or S3 (django-storages); see conversations.models.audio_storage
# ------------------------------------------------------------------------------
STATIC_URL = "/static/"
# Static files are served from the apps' static dirs (WhiteNoise, finders); STATIC_ROOT is only where collectstatic
# copies them for a reverse proxy, when one serves /static/ instead.
STATIC_ROOT = env.str("STATIC_ROOT", default="") or None
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
AUDIO_STORAGE = env("AUDIO_STORAGE", default="local")  # local | s3
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="apsara-audio")
AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default="us-east-1")
AWS_ACCESS_KEY_ID = env("AWS_ACCESS_KEY_ID", default=None)
AWS_SECRET_ACCESS_KEY = env("AWS_SECRET_ACCESS_KEY", default=None)
AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=300)  # presigned URL lifetime, seconds


def _audio_storage_config() -> dict:
    if AUDIO_STORAGE == "s3":
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": AWS_STORAGE_BUCKET_NAME,
                "endpoint_url": AWS_S3_ENDPOINT_URL,
                "region_name": AWS_S3_REGION_NAME,
                "access_key": AWS_ACCESS_KEY_ID,
                "secret_key": AWS_SECRET_ACCESS_KEY,
                "querystring_auth": True,
                "querystring_expire": AWS_QUERYSTRING_EXPIRE,
                "file_overwrite": False,
                "default_acl": None,
            },
        }
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "audio": _audio_storage_config(),
}

# GEMINI: API key, Vertex (OAuth), or the built-in simulator; see gemini/client.py
# ------------------------------------------------------------------------------
GEMINI_API_KEY = env("GEMINI_API_KEY", default="")
GEMINI_API_VERSION = env("GEMINI_API_VERSION", default="")  # REST only; empty: the SDK's default
# Live on the Gemini API: empty means v1beta, the only version it serves Live on (v1alpha also works; anything else
# is refused at start-up). Vertex AI always uses the SDK's default. See gemini/client.py.
GEMINI_LIVE_API_VERSION = env("GEMINI_LIVE_API_VERSION", default="")
GEMINI_BASE_URL = env("GEMINI_BASE_URL", default="")  # e.g. a stand-alone simulator
GEMINI_CA_FILE = env("GEMINI_CA_FILE", default="")  # CA to trust for GEMINI_BASE_URL
GOOGLE_GENAI_USE_VERTEXAI = env.bool("GOOGLE_GENAI_USE_VERTEXAI", default=False)
GOOGLE_CLOUD_PROJECT = env("GOOGLE_CLOUD_PROJECT", default="")
GOOGLE_CLOUD_LOCATION = env("GOOGLE_CLOUD_LOCATION", default="us-central1")
GOOGLE_APPLICATION_CREDENTIALS = env("GOOGLE_APPLICATION_CREDENTIALS", default="")
GEMINI_TEXT_MODEL = env("GEMINI_TEXT_MODEL", default="gemini-2.5-flash")
# Title new conversations from their first exchange (conversations.titles), in a background thread.
CONVERSATION_TITLES = env.bool("CONVERSATION_TITLES", default=True)
GEMINI_LIVE_MODEL = env("GEMINI_LIVE_MODEL", default="gemini-3.1-flash-live-preview")
GEMINI_SIM_STATE_DIR = Path(env("GEMINI_SIM_STATE_DIR", default=str(BASE_DIR / ".sim")))

# USAGE AND QUOTAS (usage/, docs/usage.md)
# ------------------------------------------------------------------------------
# Per person and UTC day; a person's own limits (admin: daily quotas) override these. 0 = unlimited.
# Tokens in and out (REST and Live) refuse typed replies and new live calls once reached; live minutes (recorded
# audio in and out) refuse new live calls. A call that crosses either is told and ended, everything said saved.
USAGE_DAILY_TOKENS = env.int("USAGE_DAILY_TOKENS", default=0)
USAGE_DAILY_LIVE_MINUTES = env.int("USAGE_DAILY_LIVE_MINUTES", default=0)

# LIMITS
# ------------------------------------------------------------------------------
LIVE_MAX_SESSIONS_PER_USER = env.int("LIVE_MAX_SESSIONS_PER_USER", default=3)
# A /live frame larger than this is answered FRAME_TOO_LARGE and the socket stays usable (docs/live-protocol.md).
LIVE_MAX_FRAME_BYTES = env.int("LIVE_MAX_FRAME_BYTES", default=512 * 1024)
# The server's own limit on an incoming WebSocket message (and frame), the same under daphne (runserver) and uvicorn
# (apsara.serve): beyond it the server closes the socket with 1009 without reading on. Between the two limits a frame
# is read, then refused with FRAME_TOO_LARGE.
WEBSOCKET_MAX_MESSAGE_BYTES = env.int("WEBSOCKET_MAX_MESSAGE_BYTES", default=16 * 1024 * 1024)
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = WEBSOCKET_MAX_MESSAGE_BYTES  # read by daphne's runserver
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = WEBSOCKET_MAX_MESSAGE_BYTES  # browsers send a message as one frame
LIVE_INBOUND_QUEUE_ITEMS = env.int("LIVE_INBOUND_QUEUE_ITEMS", default=500)  # browser→Gemini buffer (~20 s of 40 ms)
LIVE_AUDIO_RATE_FACTOR = env.float("LIVE_AUDIO_RATE_FACTOR", default=3.0)  # accepted audio speed vs real time
LIVE_AUDIO_BURST_SECONDS = env.float("LIVE_AUDIO_BURST_SECONDS", default=10.0)  # ... plus this much at once
LIVE_AUDIO_FLOOD_CLOSE_SECONDS = env.float("LIVE_AUDIO_FLOOD_CLOSE_SECONDS", default=10.0)  # dropped, then closed
LIVE_UPSTREAM_MAX_RETRIES = env.int("LIVE_UPSTREAM_MAX_RETRIES", default=4)
LIVE_UPSTREAM_BACKOFF_SECONDS = env.float("LIVE_UPSTREAM_BACKOFF_SECONDS", default=0.5)  # doubles per attempt
LIVE_CONNECT_TIMEOUT_SECONDS = env.float("LIVE_CONNECT_TIMEOUT_SECONDS", default=15.0)
LIVE_RESUMPTION_TTL_SECONDS = env.int("LIVE_RESUMPTION_TTL_SECONDS", default=2 * 60 * 60)  # Gemini keeps handles 2 h
# A process holds its sessions with a lease this long, renewed every quarter of it (live.lease): a session whose
# process died can be taken over this long after its last renewal at the latest.
LIVE_LEASE_SECONDS = env.float("LIVE_LEASE_SECONDS", default=2.0)
# A worker told to stop (SIGTERM/SIGINT) hands its calls over within this long (live.shutdown), then exits anyway.
LIVE_DRAIN_SECONDS = env.float("LIVE_DRAIN_SECONDS", default=10.0)
# How long the Talk page keeps trying to resume a call after its socket went away (a rolling deploy, a crashed
# worker whose lease must run out, a network cut), counted from the drop; then it gives the call up. Rendered into
# the Talk slot (data-reconnect-window-seconds); docs/live-protocol.md, "Reconnecting".
LIVE_RECONNECT_WINDOW_SECONDS = env.int("LIVE_RECONNECT_WINDOW_SECONDS", default=90)
# DIRECT MODE (docs/live-direct.md): the browser talks to Gemini itself with an ephemeral token. "off" or "allowed"
# (then each person chooses in Talk settings); never on Vertex AI, which has no ephemeral tokens.
LIVE_DIRECT_MODE = env.str("LIVE_DIRECT_MODE", default="off")
LIVE_DIRECT_TOKEN_SECONDS = env.int("LIVE_DIRECT_TOKEN_SECONDS", default=30 * 60)  # the token's expireTime
LIVE_DIRECT_NEW_SESSION_SECONDS = env.int("LIVE_DIRECT_NEW_SESSION_SECONDS", default=60)  # its newSessionExpireTime
LIVE_DIRECT_TOKEN_RATE = env.str("LIVE_DIRECT_TOKEN_RATE", default="20/hour")  # tokens per person (DRF throttle)
LIVE_DIRECT_TURN_MAX_SECONDS = env.int("LIVE_DIRECT_TURN_MAX_SECONDS", default=600)  # one posted turn's audio
LIVE_TOOL_TIMEOUT_SECONDS = env.float("LIVE_TOOL_TIMEOUT_SECONDS", default=10.0)
LIVE_RECORD_PAD_MS = env.int("LIVE_RECORD_PAD_MS", default=300)  # audio kept around speech in stored user turns
LIVE_SILENCE_RMS = env.float("LIVE_SILENCE_RMS", default=200.0)  # PCM16 RMS below which a frame is silence
GENERATE_MAX_PROMPT_CHARS = env.int("GENERATE_MAX_PROMPT_CHARS", default=32000)
GENERATE_KEEPALIVE_SECONDS = env.float("GENERATE_KEEPALIVE_SECONDS", default=15.0)  # SSE comment while Gemini thinks
GENERATE_IDLE_TIMEOUT_SECONDS = env.float("GENERATE_IDLE_TIMEOUT_SECONDS", default=120.0)  # then GEMINI_TIMEOUT
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)  # a JSON body on /api/; larger: 413
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=20)  # arrays/objects nested deeper: 400 too_deep

# API
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apsara.api.SessionAuthentication"],  # session + CSRF, 401 when anonymous
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apsara.api.JSONParser"],  # size, depth, numbers and text checked at the edge
    "EXCEPTION_HANDLER": "apsara.api.api_exception_handler",  # {"error": {code, message, field}}; docs/api.md
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Apsara API",
    "DESCRIPTION": (
        "Conversations, messages (typed and live, one history), streamed generation (server-sent events) and audio "
        "files. Authentication is the Django session (log in through the pages; send the CSRF token in X-CSRFToken "
        "on unsafe methods); the user is always the logged-in one. Errors: "
        '`{"error": {"code", "message", "field", "fields"?}}`, naming the field at fault. See docs/api.md.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# LOGGING
# ------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "google_genai": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failures and lockouts (names and addresses masked), not every login
    },
}

# OPERATIONS
# ------------------------------------------------------------------------------
# /metrics is open when empty (scrape on a private network); when set, scrapers must send
# "Authorization: Bearer <METRICS_TOKEN>" (Prometheus: `authorization: {credentials: ...}` in the scrape config).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
