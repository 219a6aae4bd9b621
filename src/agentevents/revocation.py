"""Token revocation in Redis: the keys gateways check, and the notice that closes open connections.

  ae:revoked:<jti>       any value: the token with this ``jti`` is revoked (until the key expires)
  ae:revoked-user:<sub>  any value: every token of this user is revoked
  ae:revocations         pub/sub channel: ``{"jti": …}`` or ``{"user_id": …}`` right after a key is set

A handshake or ``auth_refresh`` with a revoked token is refused. Gateways also close open connections
running on a revoked token (close code 3502): at once on the notice, and by a periodic check of the
keys, which catches a key set without a notice or a notice missed while Redis was unreachable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

CHANNEL = "ae:revocations"
DEFAULT_TTL_S = 3600


def token_key(jti: str) -> str:
    return f"ae:revoked:{jti}"


def user_key(user_id: str) -> str:
    return f"ae:revoked-user:{user_id}"


def notice(*, jti: str | None = None, user_id: str | None = None) -> bytes:
    if (jti is None) == (user_id is None):
        raise ValueError("revoke either one token (jti) or one user (user_id)")
    return orjson.dumps({"jti": jti} if jti is not None else {"user_id": user_id})


def parse_notice(raw: bytes | str) -> tuple[str | None, str | None]:
    """(jti, user_id) of a notice; (None, None) for anything else."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    jti, user_id = body.get("jti"), body.get("user_id")
    return (jti if isinstance(jti, str) else None), (user_id if isinstance(user_id, str) else None)


async def revoke(redis: Any, *, jti: str | None = None, user_id: str | None = None,
                 ttl_s: int = DEFAULT_TTL_S) -> None:
    """Revoke one token or every token of a user for ``ttl_s`` seconds, and tell the gateways."""
    message = notice(jti=jti, user_id=user_id)
    key = token_key(jti) if jti is not None else user_key(user_id or "")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, b"1", ex=ttl_s)
        pipe.publish(CHANNEL, message)
        await pipe.execute()


async def is_revoked(redis: Any, jti: str, user_id: str) -> bool:
    return bool(await redis.exists(token_key(jti), user_key(user_id)))


async def revoked_among(redis: Any, tokens: Iterable[tuple[str, str]], *, batch: int = 500) -> set[tuple[str, str]]:
    """Which of these (jti, user_id) pairs are revoked now, in pipelined batches of EXISTS."""
    pending: Sequence[tuple[str, str]] = list(dict.fromkeys(tokens))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(pending), batch):
        chunk = pending[start:start + batch]
        async with redis.pipeline(transaction=False) as pipe:
            for jti, user_id in chunk:
                pipe.exists(token_key(jti), user_key(user_id))
            answers = await pipe.execute()
        found.update(pair for pair, answer in zip(chunk, answers, strict=True) if answer)
    return found
