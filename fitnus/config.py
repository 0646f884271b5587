"""Settings, read once from the environment into one typed object.

Every default is safe for the embedded mode (`fitnus up` on a laptop): an SQLite
file and an embedded Redis server under ``./var/``, a generated JWT secret.
Production must say what it wants: ``FITNUS_ENV=production`` without an explicit
``JWT_SECRET`` refuses to start.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from fitnus.accounts.kakao import KakaoLoginConfig
from fitnus.errors import ConfigurationError, InvalidInput
from fitnus.payments.kakaopay import GENERATIONS, KAPI, OPEN_API, KakaoPayConfig
from fitnus.settlement.rules import percent_to_bp
from fitnus.waitlist.rules import ClaimWindows

# Kakao Pay's test merchant: payments through it take no money.
TEST_CID = "TC0ONETIME"
JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name
JWT_SECRET_BYTES = 48


@dataclass(frozen=True, kw_only=True)
class Settings:
    env: str = "development"
    var_dir: Path = Path("var")
    database_url: str = "sqlite://var/fitnus.sqlite3"
    # None means "the embedded Redis server under var_dir" (see fitnus.embedded_redis).
    redis_url: str | None = None
    redis_key_prefix: str = "fitnus:"
    # Where dramatiq's messages go: amqp://… for RabbitMQ, redis://… for a
    # Redis of their own; None: the Redis of REDIS_URL, unless that is a
    # cluster, which dramatiq's Redis broker cannot use.
    broker_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Where clients reach us (scheme, host, optional path; no trailing "/"),
    # for links we hand out. None: the request's own scheme and Host header,
    # which a client or a proxy in front of us chooses.
    public_base_url: str | None = None
    jwt_secret: str = field(default="", repr=False)
    # The secret before a rotation: tokens it signed are accepted until they
    # expire (set it for one ACCESS_TOKEN_TTL_SECONDS, then remove it).
    jwt_previous_secret: str | None = field(default=None, repr=False)
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "fitnus"
    jwt_audience: str = "fitnus-api"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 14 * 24 * 3600
    # Failed logins: per address and per (email, address) in one window; per
    # email across addresses in a longer one, past which only addresses that
    # have not failed may try (see fitnus.accounts.throttle).
    login_failures_per_address: int = 100
    login_failures_per_email_and_address: int = 5
    login_failure_window_seconds: int = 15 * 60
    login_failures_per_email: int = 20
    login_email_failure_window_seconds: int = 60 * 60
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 64 * 1024
    worker_processes: int = 1
    worker_threads: int = 8
    # How long an idle worker waits between looks for new messages at most.
    # dramatiq's default (1 s) made the first booking after a quiet spell wait
    # up to a second for its drain to start.
    worker_idle_poll_ms: int = 50
    worker_metrics_port: int = 9191
    # The scheduler's Prometheus exposition (leader, jobs sent); 0: none.
    scheduler_metrics_port: int = 9192
    web_processes: int = 1
    command_redrive_after_seconds: int = 30
    scheduler_lease_seconds: int = 15
    reminder_lead_minutes: int = 60
    # A waitlist offer's claim window: while the start is more than 24 h
    # away, under 24 h, under 3 h; and no offers in the last minutes.
    waitlist_claim_minutes_far: int = 120
    waitlist_claim_minutes_within_day: int = 30
    waitlist_claim_minutes_within_hours: int = 10
    waitlist_offers_stop_minutes: int = 30
    # Coupons expire this long after they were bought or granted; people are
    # told this long before.
    coupon_validity_days: int = 365
    coupon_expiry_notice_days: int = 7
    # Kafka for domain events (auction bids and results); None: the outbox
    # is drained to nowhere.
    kafka_bootstrap_servers: str | None = None
    # Kafka's idempotent producer: no duplicate from the client's own retries.
    # Off only for brokers without InitProducerId (Tansu, in the tests).
    kafka_idempotent_producer: bool = True
    search_backend: str = "redis"
    elasticsearch_url: str | None = None
    elasticsearch_index: str = "fitnus-centers"
    search_outbox_sweep_after_seconds: int = 30
    # How long a web process answers searches around a popular place from
    # what it last read there (changes drop it at once); 0, the default: every
    # search asks Redis (on one box the cache costs more than it saves,
    # bench/RESULTS.md, "Center search").
    search_cache_seconds: int = 0
    time_zone: str = "Asia/Seoul"
    # Kakao Pay: the generation (open-api, or kapi for merchants still on
    # it), where it is (None: Kakao's own host for that generation), the key
    # it wants (secret key / admin key) and the merchant's cid. No key: no
    # purchases (503 payments_not_configured).
    kakaopay_api: str = "open-api"
    kakaopay_base_url: str | None = None
    kakaopay_secret_key: str | None = field(default=None, repr=False)
    kakaopay_admin_key: str | None = field(default=None, repr=False)
    kakaopay_cid: str = TEST_CID
    kakaopay_timeout_seconds: int = 10
    # Kakao Login: no client id (the app's REST API key), no Kakao login.
    kakao_auth_base_url: str = "https://kauth.kakao.com"
    kakao_api_base_url: str = "https://kapi.kakao.com"
    kakao_client_id: str | None = None
    kakao_client_secret: str | None = field(default=None, repr=False)
    # As registered with Kakao; None: this service's callback under
    # PUBLIC_BASE_URL (or the listen address, on a laptop).
    kakao_redirect_uri: str | None = None
    # FitNus's commission on a center's monthly gross unless the center has
    # its own (a percentage, at most two decimals), and how many of a
    # month's orders the verification asks Kakao Pay about (0: every one).
    settlement_commission_percent: str = "5"
    settlement_kakao_sample: int = 0
    log_level: str = "INFO"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def claim_windows(self) -> ClaimWindows:
        return ClaimWindows(
            far=timedelta(minutes=self.waitlist_claim_minutes_far),
            within_day=timedelta(minutes=self.waitlist_claim_minutes_within_day),
            within_hours=timedelta(minutes=self.waitlist_claim_minutes_within_hours),
            offers_stop=timedelta(minutes=self.waitlist_offers_stop_minutes),
        )

    @property
    def settlement_commission_bp(self) -> int:
        return percent_to_bp(self.settlement_commission_percent)

    @property
    def coupon_validity(self) -> timedelta:
        return timedelta(days=self.coupon_validity_days)

    @property
    def kakaopay(self) -> KakaoPayConfig | None:
        key = self.kakaopay_secret_key if self.kakaopay_api == OPEN_API else self.kakaopay_admin_key
        if not key:
            return None
        return KakaoPayConfig(
            generation=self.kakaopay_api,
            base_url=(self.kakaopay_base_url or KAKAOPAY_HOSTS[self.kakaopay_api]).rstrip("/"),
            key=key, cid=self.kakaopay_cid, timeout_seconds=self.kakaopay_timeout_seconds)

    @property
    def kakao_login(self) -> KakaoLoginConfig | None:
        if not self.kakao_client_id:
            return None
        base = self.public_base_url or f"http://{self.http_host}:{self.http_port}"
        return KakaoLoginConfig(
            auth_base_url=self.kakao_auth_base_url.rstrip("/"),
            api_base_url=self.kakao_api_base_url.rstrip("/"),
            client_id=self.kakao_client_id, client_secret=self.kakao_client_secret,
            redirect_uri=self.kakao_redirect_uri or f"{base}{KAKAO_CALLBACK_PATH}")

    @property
    def dramatiq_namespace(self) -> str:
        return f"{self.redis_key_prefix}dramatiq"


_INT_FIELDS = {
    "SCHEDULER_METRICS_PORT": "scheduler_metrics_port",
    "SETTLEMENT_KAKAO_SAMPLE": "settlement_kakao_sample",
    "HTTP_PORT": "http_port",
    "ACCESS_TOKEN_TTL_SECONDS": "access_token_ttl_seconds",
    "REFRESH_TOKEN_TTL_SECONDS": "refresh_token_ttl_seconds",
    "LOGIN_FAILURES_PER_ADDRESS": "login_failures_per_address",
    "LOGIN_FAILURES_PER_EMAIL_AND_ADDRESS": "login_failures_per_email_and_address",
    "LOGIN_FAILURE_WINDOW_SECONDS": "login_failure_window_seconds",
    "LOGIN_FAILURES_PER_EMAIL": "login_failures_per_email",
    "LOGIN_EMAIL_FAILURE_WINDOW_SECONDS": "login_email_failure_window_seconds",
    "PASSWORD_HASH_TIME_COST": "password_hash_time_cost",
    "PASSWORD_HASH_MEMORY_KIB": "password_hash_memory_kib",
    "WORKER_PROCESSES": "worker_processes",
    "WORKER_THREADS": "worker_threads",
    "WORKER_IDLE_POLL_MS": "worker_idle_poll_ms",
    "WORKER_METRICS_PORT": "worker_metrics_port",
    "WEB_PROCESSES": "web_processes",
    "COMMAND_REDRIVE_AFTER_SECONDS": "command_redrive_after_seconds",
    "SCHEDULER_LEASE_SECONDS": "scheduler_lease_seconds",
    "SEARCH_OUTBOX_SWEEP_AFTER_SECONDS": "search_outbox_sweep_after_seconds",
    "SEARCH_CACHE_SECONDS": "search_cache_seconds",
    "REMINDER_LEAD_MINUTES": "reminder_lead_minutes",
    "WAITLIST_CLAIM_MINUTES_FAR": "waitlist_claim_minutes_far",
    "WAITLIST_CLAIM_MINUTES_WITHIN_DAY": "waitlist_claim_minutes_within_day",
    "WAITLIST_CLAIM_MINUTES_WITHIN_HOURS": "waitlist_claim_minutes_within_hours",
    "WAITLIST_OFFERS_STOP_MINUTES": "waitlist_offers_stop_minutes",
    "KAKAOPAY_TIMEOUT_SECONDS": "kakaopay_timeout_seconds",
    "COUPON_VALIDITY_DAYS": "coupon_validity_days",
    "COUPON_EXPIRY_NOTICE_DAYS": "coupon_expiry_notice_days",
}

_STR_FIELDS = {
    "SETTLEMENT_COMMISSION_PERCENT": "settlement_commission_percent",
    "FITNUS_ENV": "env",
    "DATABASE_URL": "database_url",
    "REDIS_URL": "redis_url",
    "REDIS_KEY_PREFIX": "redis_key_prefix",
    "BROKER_URL": "broker_url",
    "HTTP_HOST": "http_host",
    "JWT_SECRET": "jwt_secret",
    "JWT_PREVIOUS_SECRET": "jwt_previous_secret",
    "JWT_ALGORITHM": "jwt_algorithm",
    "JWT_ISSUER": "jwt_issuer",
    "JWT_AUDIENCE": "jwt_audience",
    "FITNUS_TIME_ZONE": "time_zone",
    "SEARCH_BACKEND": "search_backend",
    "ELASTICSEARCH_URL": "elasticsearch_url",
    "ELASTICSEARCH_INDEX": "elasticsearch_index",
    "LOG_LEVEL": "log_level",
    "KAKAOPAY_API": "kakaopay_api",
    "KAKAOPAY_BASE_URL": "kakaopay_base_url",
    "KAKAOPAY_SECRET_KEY": "kakaopay_secret_key",
    "KAKAOPAY_ADMIN_KEY": "kakaopay_admin_key",
    "KAKAOPAY_CID": "kakaopay_cid",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka_bootstrap_servers",
    "KAKAO_AUTH_BASE_URL": "kakao_auth_base_url",
    "KAKAO_API_BASE_URL": "kakao_api_base_url",
    "KAKAO_CLIENT_ID": "kakao_client_id",
    "KAKAO_CLIENT_SECRET": "kakao_client_secret",
    "KAKAO_REDIRECT_URI": "kakao_redirect_uri",
}

# Symmetric algorithms only: the secret is shared by every web process. An
# asymmetric key pair would need key files; add it when a second issuer exists.
SUPPORTED_JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
SEARCH_BACKENDS = ("redis", "elasticsearch")
KAKAO_CALLBACK_PATH = "/api/v1/auth/kakao/callback"
KAKAOPAY_HOSTS = {OPEN_API: "https://open-api.kakaopay.com", KAPI: "https://kapi.kakao.com"}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once; resolve the JWT secret for local runs."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, attr in _STR_FIELDS.items():
        if env.get(name):
            values[attr] = env[name]
    for name, attr in _INT_FIELDS.items():
        if env.get(name):
            try:
                values[attr] = int(env[name])
            except ValueError as exc:
                raise ConfigurationError(f"{name} must be an integer, got {env[name]!r}") from exc
    if env.get("KAFKA_IDEMPOTENT_PRODUCER"):
        flag = env["KAFKA_IDEMPOTENT_PRODUCER"].lower()
        if flag not in ("true", "false"):
            raise ConfigurationError("KAFKA_IDEMPOTENT_PRODUCER is true or false")
        values["kafka_idempotent_producer"] = flag == "true"
    if env.get("FITNUS_VAR_DIR"):
        values["var_dir"] = Path(env["FITNUS_VAR_DIR"])
    if env.get("PUBLIC_BASE_URL"):
        # With or without the trailing "/", it names the same place.
        values["public_base_url"] = env["PUBLIC_BASE_URL"].rstrip("/")
    settings = Settings(**values)  # type: ignore[arg-type]
    _validate(settings)
    if not settings.jwt_secret:
        settings = _with_local_jwt_secret(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.jwt_algorithm not in SUPPORTED_JWT_ALGORITHMS:
        raise ConfigurationError(
            f"JWT_ALGORITHM must be one of {', '.join(SUPPORTED_JWT_ALGORITHMS)}"
        )
    if settings.is_production and not settings.jwt_secret:
        raise ConfigurationError("FITNUS_ENV=production requires an explicit JWT_SECRET")
    if settings.search_backend not in SEARCH_BACKENDS:
        raise ConfigurationError(f"SEARCH_BACKEND must be one of {', '.join(SEARCH_BACKENDS)}")
    if settings.search_backend == "elasticsearch" and not settings.elasticsearch_url:
        raise ConfigurationError("SEARCH_BACKEND=elasticsearch requires ELASTICSEARCH_URL")
    if settings.jwt_previous_secret is not None and len(settings.jwt_previous_secret) < 32:
        raise ConfigurationError("JWT_PREVIOUS_SECRET must be at least 32 characters")
    if settings.jwt_secret and len(settings.jwt_secret) < 32:
        raise ConfigurationError("JWT_SECRET must be at least 32 characters")
    if settings.public_base_url is not None:
        _validate_public_base_url(settings.public_base_url)
    if settings.kakaopay_api not in GENERATIONS:
        raise ConfigurationError(f"KAKAOPAY_API must be one of {', '.join(GENERATIONS)}")
    if settings.kakaopay_timeout_seconds < 1:
        raise ConfigurationError("KAKAOPAY_TIMEOUT_SECONDS is 1 or more")
    if settings.is_production and settings.kakaopay and settings.kakaopay_cid == TEST_CID:
        raise ConfigurationError(
            f"FITNUS_ENV=production takes no money with Kakao's test cid {TEST_CID}: "
            "set KAKAOPAY_CID to the merchant's cid")
    try:
        settings.settlement_commission_bp  # noqa: B018 - parsed once here to refuse a bad value
    except InvalidInput as exc:
        raise ConfigurationError(f"SETTLEMENT_COMMISSION_PERCENT: {exc.detail}") from exc
    if settings.settlement_kakao_sample < 0:
        raise ConfigurationError("SETTLEMENT_KAKAO_SAMPLE is 0 (every order) or more")
    if min(settings.coupon_validity_days, settings.coupon_expiry_notice_days) < 1:
        raise ConfigurationError("COUPON_VALIDITY_DAYS and COUPON_EXPIRY_NOTICE_DAYS are 1 or more")
    if min(settings.waitlist_claim_minutes_far, settings.waitlist_claim_minutes_within_day,
           settings.waitlist_claim_minutes_within_hours) < 1:
        raise ConfigurationError("WAITLIST_CLAIM_MINUTES_* are 1 or more")


def _validate_public_base_url(url: str) -> None:
    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not parts.netloc or parts.query
            or parts.fragment or url.endswith("/")):
        raise ConfigurationError(
            "PUBLIC_BASE_URL must be an http(s) URL with a host and no query, e.g. "
            f"https://fitnus.example.com, got {url!r}"
        )


def _with_local_jwt_secret(settings: Settings) -> Settings:
    """Generate the secret once into var/ so every local process shares it.

    Written to a temporary file and hard-linked into place, so a process
    starting at the same moment reads either nothing or the whole secret.
    """
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    path = settings.var_dir / JWT_SECRET_FILE
    if not path.exists():
        candidate = settings.var_dir / f".{JWT_SECRET_FILE}.{os.getpid()}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(JWT_SECRET_BYTES))
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return replace(settings, jwt_secret=path.read_text().strip())
