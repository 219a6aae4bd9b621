"""Tokens for tests: real JWTs signed with the stack's key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..auth import issue_token


@dataclass
class TokenFactory:
    secret: str
    algorithm: str = "HS256"
    issuer: str = "agentevents"
    audience: str = "agentevents-ws"

    def token(self, user_id: str, *, permissions: list[str] | None = None, tier: str = "free",
              ttl_s: float = 3600, **kwargs: object) -> str:
        return issue_token(user_id, key=self.secret, algorithm=self.algorithm, issuer=self.issuer,
                           audience=self.audience, permissions=permissions, tier=tier, ttl_s=ttl_s, **kwargs)

    @staticmethod
    def fresh_user(name: str) -> str:
        """A user id no other scenario or run has used."""
        return f"{name.lower()}-{uuid.uuid4().hex[:10]}"
