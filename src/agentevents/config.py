"""Settings from the environment (``AE_*``), with the native stack's ports as defaults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import socket
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def parse_tier_limits(text: str) -> dict[str, int]:
    """``free=5,early=10`` -> {"free": 5, "early": 10}: concurrent runs per tier (AE_TIER_RUN_LIMITS);
    tiers left out keep the default."""
    from .auth import TIER_RUN_LIMITS, TIERS
    limits = dict(TIER_RUN_LIMITS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        tier, sep, value = item.partition("=")
        if not sep or tier.strip() not in TIERS or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"AE_TIER_RUN_LIMITS: {item!r} is not TIER=N with a tier of {', '.join(TIERS)}")
        limits[tier.strip()] = int(value)
    return limits


def parse_tier_run_timeouts(text: str) -> dict[str, float]:
    """``free=60,enterprise=900`` -> {"free": 60.0, "enterprise": 900.0}: per tier, the most seconds a
    run may take (AE_TIER_RUN_TIMEOUTS). Tiers left out have AE_RUN_TIMEOUT_S; no tier has more."""
    from .auth import TIERS
    limits: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        tier, sep, value = item.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not sep or tier.strip() not in TIERS or not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"AE_TIER_RUN_TIMEOUTS: {item!r} is not TIER=SECONDS (seconds > 0) with a tier of "
                             f"{', '.join(TIERS)}")
        limits[tier.strip()] = seconds
    return limits


def parse_base_urls(text: str) -> tuple[str, ...]:
    """``http://127.0.0.1:8098,http://localhost:9000/api`` -> the base URLs the http_api tool may call
    (AE_HTTP_ALLOWED_BASE_URLS), normalised; each must be a loopback http(s) URL."""
    from .tools.http_api import normalise_base_url
    urls = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            urls.append(normalise_base_url(item))
        except ValueError as exc:
            raise ValueError(f"AE_HTTP_ALLOWED_BASE_URLS: {item!r}: {exc}") from None
    return tuple(urls)


SQL_ROLE_SUFFIX = "_sql"
_SQL_PASSWORD_CONTEXT = b"agentevents sql_query role"


def derive_sql_database_url(database_url: str) -> str:
    """The DSN of sql_query's read-only role, made from the archive's DSN (AE_DATABASE_URL): the same
    server and database, the role ``<owner>_sql`` and a password derived from the owner's (so every
    worker of a deployment agrees on it without another secret, and it does not reveal the owner's).
    Without an owner password the role gets none either."""
    parts = urlsplit(database_url)
    owner = unquote(parts.username or "") or "agentevents"
    role = owner + SQL_ROLE_SUFFIX
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    userinfo = quote(role, safe="")
    if parts.password:
        digest = hmac.new(unquote(parts.password).encode(), _SQL_PASSWORD_CONTEXT, hashlib.sha256).digest()
        userinfo += ":" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return urlunsplit((parts.scheme, f"{userinfo}@{netloc}", parts.path, parts.query, parts.fragment))


def sql_role_credentials(sql_database_url: str) -> tuple[str, str | None]:
    """(role, password or None) of a DSN."""
    parts = urlsplit(sql_database_url)
    return unquote(parts.username or ""), unquote(parts.password) if parts.password else None


DEV_SECRET_FILE = ".stack/jwt_secret"


@dataclass(frozen=True)
class Settings:
    redis_url: str = field(default_factory=lambda: _env("AE_REDIS_URL", "redis://127.0.0.1:6381/0"))
    database_url: str = field(
        default_factory=lambda: _env("AE_DATABASE_URL", "postgresql://agentevents@127.0.0.1:5434/agentevents"))
    jwt_secret: str = field(default_factory=lambda: _env("AE_JWT_SECRET", ""))
    jwt_public_key_file: str = field(default_factory=lambda: _env("AE_JWT_PUBLIC_KEY_FILE", ""))
    jwt_algorithm: str = field(default_factory=lambda: _env("AE_JWT_ALGORITHM", "HS256"))
    jwt_issuer: str = field(default_factory=lambda: _env("AE_JWT_ISSUER", "agentevents"))
    jwt_audience: str = field(default_factory=lambda: _env("AE_JWT_AUDIENCE", "agentevents-ws"))
    host: str = field(default_factory=lambda: _env("AE_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("AE_PORT", "8000")))
    health_port: int = field(default_factory=lambda: int(_env("AE_HEALTH_PORT", "0")))
    server_id: str = field(default_factory=lambda: _env("AE_SERVER_ID", f"{socket.gethostname()}-{os.getpid()}"))
    tls_cert: str = field(default_factory=lambda: _env("AE_TLS_CERT", ""))
    tls_key: str = field(default_factory=lambda: _env("AE_TLS_KEY", ""))
    heartbeat_interval_s: float = field(default_factory=lambda: float(_env("AE_HEARTBEAT_S", "20")))
    token_grace_s: float = field(default_factory=lambda: float(_env("AE_TOKEN_GRACE_S", "5")))
    revocation_check_s: float = field(default_factory=lambda: float(_env("AE_REVOCATION_CHECK_S", "5")))
    tier_run_limits: dict[str, int] = field(default_factory=lambda: parse_tier_limits(_env("AE_TIER_RUN_LIMITS", "")))
    outbound_queue: int = field(default_factory=lambda: int(_env("AE_OUTBOUND_QUEUE", "2000")))
    history_maxlen: int = field(default_factory=lambda: int(_env("AE_HISTORY_MAXLEN", "2000")))
    history_ttl_s: int = field(default_factory=lambda: int(_env("AE_HISTORY_TTL_S", "86400")))
    run_timeout_s: float = field(default_factory=lambda: float(_env("AE_RUN_TIMEOUT_S", "300")))
    tier_run_timeouts: dict[str, float] = field(
        default_factory=lambda: parse_tier_run_timeouts(_env("AE_TIER_RUN_TIMEOUTS", "")))
    tool_timeout_max_s: float = field(default_factory=lambda: float(_env("AE_TOOL_TIMEOUT_MAX_S", "120")))
    max_events_per_run: int = field(default_factory=lambda: int(_env("AE_MAX_EVENTS_PER_RUN", "10000")))
    worker_concurrency: int = field(default_factory=lambda: int(_env("AE_WORKER_CONCURRENCY", "200")))
    http_api_base_url: str = field(default_factory=lambda: _env("AE_HTTP_API_BASE_URL", ""))
    http_allowed_base_urls: tuple[str, ...] = field(
        default_factory=lambda: parse_base_urls(_env("AE_HTTP_ALLOWED_BASE_URLS", "")))
    # sql_query's read-only role; "" = derived from database_url (derive_sql_database_url).
    sql_database_url: str = field(default_factory=lambda: _env("AE_SQL_DATABASE_URL", ""))
    log_level: str = field(default_factory=lambda: _env("AE_LOG_LEVEL", "INFO"))

    def __post_init__(self) -> None:
        if not self.sql_database_url:
            object.__setattr__(self, "sql_database_url", derive_sql_database_url(self.database_url))

    def verification_key(self) -> str:
        if self.jwt_algorithm.startswith("HS"):
            if not self.jwt_secret:
                raise RuntimeError("AE_JWT_SECRET is required for HS* tokens (there is no unauthenticated mode)")
            return self.jwt_secret
        if not self.jwt_public_key_file:
            raise RuntimeError(f"AE_JWT_PUBLIC_KEY_FILE is required for {self.jwt_algorithm} tokens")
        with open(self.jwt_public_key_file) as fh:
            return fh.read()
