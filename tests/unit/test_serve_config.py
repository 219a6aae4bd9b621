"""The serve target is configured from its profile: RS256 verification, issuer, audience, grace
and tier limits reach `agentevents serve` as AE_* settings, and the gateway reads the limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentevents.config import Settings, parse_tier_limits
from agentevents.testing import serve_stack
from agentevents.testing.profile import load_profile

SERVE = Path(__file__).resolve().parents[2] / "features" / "targets" / "serve.toml"


def test_tier_limits_parse_and_keep_defaults_for_tiers_left_out():
    assert parse_tier_limits("free=3, mid=12") == {"free": 3, "early": 10, "mid": 12, "enterprise": 50}
    assert parse_tier_limits("") == {"free": 5, "early": 10, "mid": 20, "enterprise": 50}


@pytest.mark.parametrize("text", ["free", "gold=3", "free=0", "free=x"])
def test_bad_tier_limits_are_refused_with_the_variable_named(text):
    with pytest.raises(ValueError, match="AE_TIER_RUN_LIMITS"):
        parse_tier_limits(text)


def test_settings_read_the_tier_limits(monkeypatch):
    monkeypatch.setenv("AE_TIER_RUN_LIMITS", "free=2")
    assert Settings().tier_run_limits["free"] == 2


def test_serve_gets_what_its_profile_declares(tmp_path, monkeypatch):
    monkeypatch.setenv("AE_STACK_DIR", str(tmp_path))
    profile = load_profile(SERVE)
    env = serve_stack.environment(profile, "postgresql://db/x", "redis://r/1")
    assert env["AE_JWT_ALGORITHM"] == "RS256" and "AE_JWT_SECRET" not in env
    assert Path(env["AE_JWT_PUBLIC_KEY_FILE"]).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert (env["AE_JWT_ISSUER"], env["AE_JWT_AUDIENCE"]) == ("https://auth.serve.test/", "agents-serve")
    assert env["AE_TOKEN_GRACE_S"] == "3"
    assert parse_tier_limits(env["AE_TIER_RUN_LIMITS"]) == profile.limits.runs_per_tier
    assert (env["AE_DATABASE_URL"], env["AE_REDIS_URL"]) == ("postgresql://db/x", "redis://r/1")
    spec = serve_stack.token_spec(profile)
    assert Path(spec.private_key_file).read_text().startswith("-----BEGIN PRIVATE KEY-----")
