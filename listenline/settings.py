"""Django settings for Listenline, read from the environment only.

Two shapes of the same code:

* **embedded** (``LISTENLINE_EMBEDDED=1``, set by ``listenline demo``): SQLite under
  ``$LISTENLINE_HOME``, in-process channel layer and routing store, eager Celery.
* **production** (``listenline serve``): PostgreSQL via ``DATABASE_URL`` with psycopg 3
  connection pooling, Redis via ``REDIS_URL`` for the channel layer, the routing store
  and Celery. ``listenline.cli`` refuses to serve while a required variable is missing.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from listenline.env import env_bool, env_float, env_int, env_list, env_str, listenline_home

BASE_DIR = Path(__file__).resolve().parent
EMBEDDED = env_bool("LISTENLINE_EMBEDDED", False)
HOME = listenline_home()

INSECURE_SECRET_KEY = "insecure-not-for-serving"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY and (HOME / "secret_key").is_file():
    # The embedded demo's generated key, so ``listenline createsuperuser`` etc. match it.
    SECRET_KEY = (HOME / "secret_key").read_text(encoding="utf-8").strip()
if not SECRET_KEY:
    # ``listenline serve`` refuses to start with this; other commands may run with it.
    SECRET_KEY = INSECURE_SECRET_KEY
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL] if PUBLIC_BASE_URL else []
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "listenline.apps.ListenlineConfig",
    "volunteers",
    "routing",
    "chat",
    "registrations",
    "telephony",
    "frontend",
]

# Django's middleware with their memory-only hooks run in the event loop instead of a
# thread each (listenline/middleware.py); same order, same behaviour.
MIDDLEWARE = [
    "listenline.middleware.SecurityMiddleware",
    "listenline.middleware.ContentSecurityPolicyMiddleware",
    "listenline.middleware.SessionMiddleware",
    "listenline.middleware.LocaleMiddleware",
    "listenline.middleware.CommonMiddleware",
    "listenline.middleware.CsrfViewMiddleware",
    "listenline.middleware.AuthenticationMiddleware",
    "listenline.middleware.MessageMiddleware",
    "listenline.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "listenline.urls"
ASGI_APPLICATION = "listenline.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.line",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL:
    DATABASE_URL = f"sqlite:///{HOME / 'listenline.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
    if env_bool("DATABASE_POOL", True):
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN", 2),
            "max_size": env_int("DATABASE_POOL_MAX", 20),
            "timeout": 10,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, routing store, Celery ---------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
CHANNEL_LAYER_KEY = env_str("CHANNEL_LAYER_KEY", "") or SECRET_KEY
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub, chosen by benchmarks/chat_relay.py (docs/ARCHITECTURE.md,
            # "Chat relay: how entries travel, and how many processes"): one PUBLISH per
            # event. Conversation entries no longer use it (chat/relay.py); the console's
            # routing events do. Delivery is at most once; consumers re-read state.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # socket_timeout None: redis-py 8's default 5 s timeout makes channels-redis
                # 4.3 drop every idle consumer with 1011 (channels_redis issue #422).
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                # Fernet-encrypted. (Message text does not cross the layer any more; the
                # chat seals it with a key derived from this one: chat/store.py.)
                "symmetric_encryption_keys": [CHANNEL_LAYER_KEY],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "ll:asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

ROUTING_STORE = env_str("ROUTING_STORE", "redis" if REDIS_URL else "memory")
ROUTING_REDIS_PREFIX = env_str("ROUTING_REDIS_PREFIX", "ll:rt")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- Routing defaults (brief: "Routing: the defaults") ----------------------------------
ROUTING = {
    "OFFER_TIMEOUT_S": env_float("ROUTING_OFFER_TIMEOUT_S", 20.0),
    "MISSED_OFFERS_TO_PAUSE": env_int("ROUTING_MISSED_OFFERS_TO_PAUSE", 2),
    "DROP_GRACE_S": env_float("ROUTING_DROP_GRACE_S", 60.0),
    "WAIT_CAP_S": env_float("ROUTING_WAIT_CAP_S", 60.0),
    "TICK_S": env_float("ROUTING_TICK_S", 1.0),
    "TICKER": env_bool("ROUTING_TICKER", True),
}
FAIR_USE_MESSAGE = env_str("FAIR_USE_MESSAGE", "") or None
FAIR_USE_LIMIT = env_int("FAIR_USE_LIMIT", 4)
FAIR_USE_WINDOW_S = env_int("FAIR_USE_WINDOW_S", 24 * 3600)

# --- Chat -----------------------------------------------------------------------------
# Message text lives only in the chat store (Redis, or process memory in the demo), under
# keys that expire after CHAT_RETENTION_S and are deleted when the conversation ends.
CHAT_STORE = env_str("CHAT_STORE", "")  # "" follows REDIS_URL: redis, else memory
CHAT_REDIS_PREFIX = env_str("CHAT_REDIS_PREFIX", "ll:chat")
CHAT_RETENTION_S = env_int("CHAT_RETENTION_S", 6 * 3600)
CHAT_CALLER_GRACE_S = env_float("CHAT_CALLER_GRACE_S", 300.0)
CHAT_SWEEP_S = env_float("CHAT_SWEEP_S", 1.0)
CHAT_QUEUE_DEBOUNCE_S = env_float("CHAT_QUEUE_DEBOUNCE_S", 1.0)
CHAT_QUEUE_REFRESH_S = env_float("CHAT_QUEUE_REFRESH_S", 30.0)

# --- Telephony ------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL", "")
LINE_PHONE_NUMBER = env_str("LINE_PHONE_NUMBER", "0900 0767")
CRISIS_PHONE_NUMBER = env_str("CRISIS_PHONE_NUMBER", "113")
TELEPHONY_REGION_MENU = env_bool("TELEPHONY_REGION_MENU", True)
TELEPHONY_HOLD_MUSIC_URL = env_str("TELEPHONY_HOLD_MUSIC_URL", "")
TELEPHONY_REDIS_PREFIX = env_str("TELEPHONY_REDIS_PREFIX", "")
TWILIO_HTTP_TRANSPORT = env_str("TWILIO_HTTP_TRANSPORT", "")
# Only the webhook benchmark turns this on: a trivial view as its baseline.
TELEPHONY_BENCHMARK_VIEW = env_bool("LISTENLINE_BENCHMARK_VIEW", False)

# --- Auth, i18n, static -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "nl"
LANGUAGES = [("nl", "Nederlands"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(HOME / "static")))

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", bool(PUBLIC_BASE_URL.startswith("https")))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Logging: never a caller field, never message text (see docs/PRIVACY.md) -----------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Daphne's access log would print client addresses: keep it quiet.
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
