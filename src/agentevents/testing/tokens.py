"""Tokens for tests: real JWTs, signed the way the target profile says (algorithm, key, issuer,
audience, and the claim names the backend reads for user, permissions and tier)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from .profile import TokenSpec


@dataclass
class TokenFactory:
    secret: str  # the signing key: an HS* secret or an RS*/ES* private key (PEM)
    algorithm: str = "HS256"
    issuer: str = "agentevents"
    audience: str = "agentevents-ws"
    claims: TokenSpec | None = None  # claim and permission names; None: the reference backend's

    def token(self, user_id: str, *, permissions: list[str] | None = None, tier: str = "free",
              ttl_s: float = 3600, now: float | None = None, email: str | None = None,
              extra: dict[str, Any] | None = None) -> str:
        now = time.time() if now is None else now
        names = self.claims
        payload: dict[str, Any] = {
            names.user_claim if names else "sub": user_id,
            "iat": int(now), "exp": int(now + ttl_s), "jti": uuid.uuid4().hex, "iss": self.issuer, "aud": self.audience,
            names.permissions_claim if names else "permissions": [self.permission(p) for p in permissions or []],
            names.tier_claim if names else "tier": tier,
        }
        if email:
            payload["email"] = email
        payload.update(extra or {})
        return jwt.encode(payload, self.secret, algorithm=self.algorithm)

    def permission(self, name: str) -> str:
        """The backend's name for a permission the suite asks for by the reference name
        (``agents:script`` is the conformance agent's, whatever the backend calls it)."""
        if self.claims is None:
            return name
        from .profile import TokenSpec
        reference = {ours: key for key, ours in TokenSpec().permissions.items()}
        return self.claims.permissions.get(reference.get(name, ""), name)

    @staticmethod
    def fresh_user(name: str) -> str:
        """A user id no other scenario or run has used."""
        return f"{name.lower()}-{uuid.uuid4().hex[:10]}"
