"""Test settings: SQLite and in-memory layer unless DATABASE_URL / REDIS_URL point at real services."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-only-key"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
GEMINI_API_KEY = ""  # tests always use the simulator, whatever the shell has set
GEMINI_BASE_URL = ""
GEMINI_API_VERSION = ""
GEMINI_LIVE_API_VERSION = ""
GEMINI_CA_FILE = ""
GOOGLE_GENAI_USE_VERTEXAI = False
CONVERSATION_TITLES = False  # no background threads calling Gemini; tests that title turn it on
APSARA_REQUIRE_REAL_SERVICES = env.bool("APSARA_REQUIRE_REAL_SERVICES", default=False)
