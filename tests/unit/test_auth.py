import time

import jwt
import pytest

from agentevents.auth import AuthError, Claims, issue_token, may_refresh, token_from_handshake, verify_token

KEY = "k" * 40
CHECK = {"key": KEY, "algorithm": "HS256", "issuer": "agentevents", "audience": "agentevents-ws"}


def test_a_valid_token_gives_its_claims():
    token = issue_token("alice", key=KEY, permissions=["agents:script"], tier="mid")
    claims = verify_token(token, **CHECK)
    assert claims.user_id == "alice" and claims.tier == "mid"
    assert claims.has("agents:script") and not claims.has("tools:sql")


@pytest.mark.parametrize("token, reason", [
    (issue_token("a", key="other-key" * 5), "bad signature"),
    (issue_token("a", key=KEY, ttl_s=-10), "token expired"),
    (issue_token("a", key=KEY, audience="someone-else"), "wrong audience"),
    (issue_token("a", key=KEY, issuer="mallory"), "wrong issuer"),
    ("not-a-jwt", "invalid token: DecodeError"),
    ("", "missing token"),
])
def test_bad_tokens_are_refused_with_a_reason(token, reason):
    with pytest.raises(AuthError) as err:
        verify_token(token, **CHECK)
    assert err.value.reason == reason


def test_unsigned_tokens_are_refused():
    now = int(time.time())
    token = jwt.encode({"sub": "a", "iat": now, "exp": now + 60, "jti": "j", "iss": "agentevents",
                        "aud": "agentevents-ws"}, None, algorithm="none")
    with pytest.raises(AuthError):
        verify_token(token, **CHECK)


def test_missing_required_claim_and_bad_tier():
    now = int(time.time())
    no_jti = jwt.encode({"sub": "a", "iat": now, "exp": now + 60, "iss": "agentevents", "aud": "agentevents-ws"},
                        KEY, algorithm="HS256")
    with pytest.raises(AuthError, match="missing claim jti"):
        verify_token(no_jti, **CHECK)
    with pytest.raises(AuthError, match="unknown tier"):
        verify_token(issue_token("a", key=KEY, tier="platinum"), **CHECK)


def test_token_from_handshake_prefers_the_bearer_header():
    assert token_from_handshake("Bearer abc", ["jwt.zzz"]) == "abc"
    assert token_from_handshake(None, ["jwt-auth", "jwt.zzz"]) == "zzz"
    assert token_from_handshake("Basic abc", []) is None
    assert token_from_handshake(None, ["jwt-auth"]) is None


def claims(user: str, exp: int) -> Claims:
    return Claims(user, exp, 0, "j", frozenset(), "free", {})


def test_refresh_must_keep_the_user_and_not_shorten_the_token():
    assert may_refresh(claims("a", 100), claims("a", 200))
    assert not may_refresh(claims("a", 100), claims("b", 200))
    assert not may_refresh(claims("a", 100), claims("a", 50))


def test_rs256_tokens_verify_with_the_public_key_only():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    token = issue_token("carol", key=private, algorithm="RS256")
    check = {**CHECK, "key": public_pem, "algorithm": "RS256"}
    assert verify_token(token, **check).user_id == "carol"
    # An HS256 token signed with the public key text must not pass as RS256 (algorithm confusion).
    with pytest.raises(AuthError):
        verify_token(issue_token("carol", key="x" * 40), **check)


@pytest.mark.parametrize(("claim", "value"), [("exp", None), ("exp", 2**64), ("exp", 2**53), ("iat", True),
                                              ("iat", 1.5e9)])
def test_timestamps_are_plain_integers_in_range(claim, value):
    now = int(time.time())
    payload = {"sub": "a", "iat": now, "exp": now + 60, "jti": "j", "iss": "agentevents", "aud": "agentevents-ws"}
    payload[claim] = str(now + 60) if value is None else value
    token = jwt.encode(payload, KEY, algorithm="HS256")
    with pytest.raises(AuthError) as err:
        verify_token(token, **CHECK)
    assert err.value.reason == f"invalid {claim}"


@pytest.mark.parametrize("value", [None, 2**64, -(2**70), -1, True, 1.5e9])
def test_a_not_before_claim_is_a_plain_integer_in_range_too(value):
    now = int(time.time())
    payload = {"sub": "a", "iat": now, "exp": now + 60, "jti": "j", "iss": "agentevents", "aud": "agentevents-ws",
               "nbf": str(now) if value is None else value}
    with pytest.raises(AuthError) as err:
        verify_token(jwt.encode(payload, KEY, algorithm="HS256"), **CHECK)
    assert err.value.reason in ("invalid nbf", "invalid token: ImmatureSignatureError",
                                "invalid token: DecodeError"), err.value.reason


@pytest.mark.parametrize(("claim", "value"), [("exp", float("inf")), ("exp", float("nan")), ("iat", float("inf")),
                                              ("nbf", float("-inf")), ("iat", "x"), ("exp", [1]), ("iat", {"a": 1})])
def test_times_no_check_foresaw_are_refused_not_raised(claim, value):
    now = int(time.time())
    payload = {"sub": "a", "iat": now, "exp": now + 60, "jti": "j", "iss": "agentevents", "aud": "agentevents-ws",
               claim: value}
    with pytest.raises(AuthError):
        verify_token(jwt.encode(payload, KEY, algorithm="HS256"), **CHECK)


def test_a_valid_not_before_is_accepted():
    now = int(time.time())
    payload = {"sub": "a", "iat": now, "exp": now + 60, "nbf": now - 1, "jti": "j", "iss": "agentevents",
               "aud": "agentevents-ws"}
    assert verify_token(jwt.encode(payload, KEY, algorithm="HS256"), **CHECK).user_id == "a"
