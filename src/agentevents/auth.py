"""JWT rules: who may connect, what they may do. Pure apart from the clock passed in."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

TIERS = ("free", "early", "mid", "enterprise")
# Concurrent runs per user, by tier.
TIER_RUN_LIMITS = {"free": 5, "early": 10, "mid": 20, "enterprise": 50}

PERM_SCRIPT = "agents:script"
PERM_SQL = "tools:sql"
PERM_HTTP = "tools:http"
PERM_PREMIUM = "agents:premium"


class AuthError(Exception):
    """The token is refused. ``reason`` is safe to show (it never echoes the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    user_id: str
    exp: int
    iat: int
    jti: str
    permissions: frozenset[str]
    tier: str
    raw: dict[str, Any]

    def has(self, permission: str) -> bool:
        return has_permission(self.permissions, permission)


def has_permission(granted: frozenset[str] | set[str], permission: str) -> bool:
    """The one rule for permissions everywhere: the name itself, or the ``*`` wildcard."""
    return permission in granted or "*" in granted


def verify_token(token: str, *, key: str, algorithm: str, issuer: str, audience: str,
                 leeway: float = 0) -> Claims:
    """Decode and check a JWT: signature, exp, iat, iss, aud, and our required claims."""
    if not token:
        raise AuthError("missing token")
    try:
        payload = jwt.decode(token, key, algorithms=[algorithm], issuer=issuer, audience=audience,
                             leeway=leeway,
                             options={"require": ["sub", "exp", "iat", "jti", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidAudienceError:
        raise AuthError("wrong audience") from None
    except jwt.InvalidIssuerError:
        raise AuthError("wrong issuer") from None
    except jwt.InvalidSignatureError:
        raise AuthError("bad signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"missing claim {exc.claim}") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {type(exc).__name__}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a claim no check foresaw
        raise AuthError(f"invalid token: {type(exc).__name__}") from None
    return claims_from_payload(payload)


MAX_TIMESTAMP = 2**53  # the largest exact integer of every JSON reader; far past any real expiry


def claims_from_payload(payload: dict[str, Any]) -> Claims:
    for claim in ("exp", "iat", "nbf"):  # numbers, and plain ones: not "123", 1e3, true, nor 2**64
        if claim == "nbf" and claim not in payload:
            continue  # the one optional time claim
        value = payload.get(claim)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_TIMESTAMP:
            raise AuthError(f"invalid {claim}")
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise AuthError("invalid sub")
    perms = payload.get("permissions", [])
    if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
        raise AuthError("permissions must be a list of strings")
    tier = payload.get("tier", "free")
    if tier not in TIERS:
        raise AuthError(f"unknown tier {tier!r}")
    return Claims(user_id=sub, exp=int(payload["exp"]), iat=int(payload["iat"]), jti=str(payload["jti"]),
                  permissions=frozenset(perms), tier=tier, raw=payload)


def issue_token(user_id: str, *, key: str, algorithm: str = "HS256", issuer: str = "agentevents",
                audience: str = "agentevents-ws", permissions: list[str] | None = None, tier: str = "free",
                ttl_s: float = 3600, now: float | None = None, email: str | None = None,
                extra: dict[str, Any] | None = None) -> str:
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "sub": user_id, "iat": int(now), "exp": int(now + ttl_s), "jti": uuid.uuid4().hex,
        "iss": issuer, "aud": audience, "permissions": list(permissions or []), "tier": tier,
    }
    if email:
        payload["email"] = email
    payload.update(extra or {})
    return jwt.encode(payload, key, algorithm=algorithm)


def token_from_handshake(authorization: str | None, subprotocols: list[str]) -> str | None:
    """Bearer header first; else ``jwt.<token>`` from Sec-WebSocket-Protocol (browsers)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    for proto in subprotocols:
        if proto.startswith("jwt.") and len(proto) > 4:
            return proto[4:]
    return None


def may_refresh(current: Claims, new: Claims) -> bool:
    """A refreshed token must be for the same user and must not expire earlier."""
    return new.user_id == current.user_id and new.exp >= current.exp
