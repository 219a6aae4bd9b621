"""Settings from the environment (``AE_*``), with the native stack's ports as defaults."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field


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
    tier_run_limits: dict[str, int] = field(default_factory=lambda: parse_tier_limits(_env("AE_TIER_RUN_LIMITS", "")))
    outbound_queue: int = field(default_factory=lambda: int(_env("AE_OUTBOUND_QUEUE", "2000")))
    history_maxlen: int = field(default_factory=lambda: int(_env("AE_HISTORY_MAXLEN", "2000")))
    history_ttl_s: int = field(default_factory=lambda: int(_env("AE_HISTORY_TTL_S", "86400")))
    run_timeout_s: float = field(default_factory=lambda: float(_env("AE_RUN_TIMEOUT_S", "300")))
    max_events_per_run: int = field(default_factory=lambda: int(_env("AE_MAX_EVENTS_PER_RUN", "10000")))
    worker_concurrency: int = field(default_factory=lambda: int(_env("AE_WORKER_CONCURRENCY", "200")))
    http_api_base_url: str = field(default_factory=lambda: _env("AE_HTTP_API_BASE_URL", ""))
    log_level: str = field(default_factory=lambda: _env("AE_LOG_LEVEL", "INFO"))

    def verification_key(self) -> str:
        if self.jwt_algorithm.startswith("HS"):
            if not self.jwt_secret:
                raise RuntimeError("AE_JWT_SECRET is required for HS* tokens (there is no unauthenticated mode)")
            return self.jwt_secret
        if not self.jwt_public_key_file:
            raise RuntimeError(f"AE_JWT_PUBLIC_KEY_FILE is required for {self.jwt_algorithm} tokens")
        with open(self.jwt_public_key_file) as fh:
            return fh.read()
