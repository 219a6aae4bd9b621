"""Target profiles: every file in features/targets loads, mistakes are one clear line, -D values
override single entries, tokens are signed as the profile says, and a target offers only the
capabilities it can really provide."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agentevents.testing.capabilities import CAPABILITIES, missing, skip_reason
from agentevents.testing.profile import ProfileError, TokenSpec, load_profile, parse_profile
from agentevents.testing.tokens import TokenFactory
from agentevents.testing.world import StackTarget

TARGETS = Path(__file__).resolve().parents[2] / "features" / "targets"


@pytest.mark.parametrize("path", sorted(TARGETS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_profile_loads(path):
    profile = load_profile(path)
    assert profile.name == path.stem
    assert profile.capabilities <= set(CAPABILITIES)


def test_the_native_profile_declares_every_capability_and_protocol_only_none():
    assert load_profile(TARGETS / "native.toml").capabilities == set(CAPABILITIES)
    assert load_profile(TARGETS / "protocol-only.toml").capabilities == frozenset()


@pytest.mark.parametrize(("text", "expected"), [
    ("stack = 'moon'", "stack = 'moon'"),
    ("colour = 'red'", "unknown key(s) colour"),
    ("[limits]\ntoken_grace = 2", "unknown key(s) token_grace"),
    ("[limits]\ntoken_grace_s = 'two'", "token_grace_s must be a float"),
    ("[capabilities]\ndeclared = ['teleport']", "unknown capability teleport"),
    ("conformance_version = '9'", "this suite speaks '1'"),
    ("[urls]\nwebsocket = 'ws://x'", "unknown key(s) in [urls]: websocket"),
    ("[control]\nurl = 'http://127.0.0.1:8099'\nsecret = 's'\ntoken = 't'", "unknown key(s) in [control]: token"),
    ("[control]\nurl = 'http://127.0.0.1:8099'", "[control] needs url and secret"),
    ("[control]\nurl = 'ws://127.0.0.1:8099'\nsecret = 's'", "is not an http:// or https:// URL"),
    ("control = 'http://127.0.0.1:8099'", "[control] must be a table"),
    ("name = ", "not valid TOML"),
])
def test_mistakes_in_a_profile_are_one_line(text, expected):
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "mine.toml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("mine.toml")
    assert "\n" not in str(caught.value)


def test_a_missing_profile_file_is_one_line(tmp_path):
    with pytest.raises(ProfileError, match="cannot read target profile"):
        load_profile(tmp_path / "absent.toml")


def test_secrets_come_from_the_environment_and_d_values_override(monkeypatch):
    monkeypatch.setenv("THEIR_SECRET", "s3cret")
    profile = parse_profile("stack = 'external'\n[urls]\nws = 'ws://a/ws'\n[tokens]\nsecret = 'env:THEIR_SECRET'\n")
    assert profile.tokens.secret == "s3cret"
    changed = profile.with_overrides({"ws_url": "ws://b/ws", "jwt_secret": "other", "stack": ""})
    assert (changed.ws_url, changed.tokens.secret, changed.stack) == ("ws://b/ws", "other", "external")
    with pytest.raises(ProfileError, match="unknown -D stack='moon'"):
        profile.with_overrides({"stack": "moon"})


def test_the_control_endpoint_comes_from_its_table_with_the_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("THEIR_CONTROL_SECRET", "c" * 40)
    profile = parse_profile("[control]\nurl = 'http://127.0.0.1:8099'\nsecret = 'env:THEIR_CONTROL_SECRET'\n")
    assert (profile.control_url, profile.control_secret) == ("http://127.0.0.1:8099", "c" * 40)
    assert (parse_profile("").control_url, parse_profile("").control_secret) == ("", "")


def test_tokens_use_the_profiles_algorithm_issuer_audience_claims_and_permission_names(tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # as a foreign backend might use
    key = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    (tmp_path / "signer.pem").write_text(key)
    spec = TokenSpec(algorithm="RS256", private_key_file=str(tmp_path / "signer.pem"), issuer="them",
                     audience="their-ws", user_claim="uid", permissions_claim="scopes", tier_claim="plan",
                     permissions={**TokenSpec().permissions, "conformance_agent": "run:conformance"})
    token = TokenFactory(spec.signing_key(), spec.algorithm, spec.issuer, spec.audience, claims=spec).token(
        "alice-1", permissions=["agents:script", "tools:other"], tier="mid")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, private.public_key(), algorithms=["RS256"], audience="their-ws", issuer="them")
    assert header["alg"] == "RS256"
    assert (claims["iss"], claims["aud"], claims["uid"], claims["plan"]) == ("them", "their-ws", "alice-1", "mid")
    assert claims["scopes"] == ["run:conformance", "tools:other"]
    assert "sub" not in claims and "permissions" not in claims


def test_an_rs256_profile_without_a_key_file_says_so():
    with pytest.raises(ProfileError, match="needs tokens.private_key_file"):
        TokenSpec(algorithm="RS256").signing_key()


def test_a_target_offers_only_what_it_can_provide():
    native = load_profile(TARGETS / "native.toml")
    seen_from_outside = StackTarget("external", "ws://127.0.0.1:8000/ws", "s", profile=native)
    assert "fault_control" not in seen_from_outside.capabilities
    assert "process_stats" not in seen_from_outside.capabilities
    assert "tls" not in seen_from_outside.capabilities  # no wss URL and CA
    assert "conformance_agent" in seen_from_outside.capabilities
    docker = StackTarget("docker", "ws://127.0.0.1:8000/ws", "s", profile=native)
    assert "fault_control" in docker.capabilities and "archive_query" not in docker.capabilities
    full = StackTarget("native", "ws://x", "s", profile=native, wss_url="wss://x", tls_ca="/ca.pem")
    assert full.capabilities == set(CAPABILITIES)
    with_endpoint = dataclasses.replace(native, control_url="http://127.0.0.1:8099", control_secret="c" * 40)
    theirs = StackTarget("external", "ws://x", "s", profile=with_endpoint)
    assert theirs.capabilities == set(CAPABILITIES) - {"tls"}  # every control capability, through the endpoint


def test_a_scenario_lacking_a_capability_is_skipped_with_the_reason():
    absent = missing(["T114", "fault_control", "conformance_agent", "serial"], {"conformance_agent"})
    assert absent == ["fault_control"]
    assert skip_reason(absent) == "needs fault_control: kills, stops or pauses a part of the backend mid-run"
    assert missing(["T001"], set()) == []


def test_from_userdata_names_what_an_external_target_lacks():
    from agentevents.testing.world import TargetError
    with pytest.raises(TargetError, match=r"needs -D ws_url=\.\.\. and -D jwt_secret=\.\.\."):
        StackTarget.from_userdata({"stack": "external", "target": str(TARGETS / "native.toml")})
    target = StackTarget.from_userdata({"stack": "external", "ws_url": "ws://127.0.0.1:9/ws", "jwt_secret": "x",
                                        "target": str(TARGETS / "native.toml")})
    assert (target.mode, target.ws_url, target.profile.name) == ("external", "ws://127.0.0.1:9/ws", "native")


def test_the_callback_service_listens_where_the_backend_allows_its_http_api_tool(monkeypatch, tmp_path):
    from agentevents.stack import native
    from agentevents.testing import serve_stack
    assert parse_profile("[urls]\ncallback = 'http://127.0.0.1:9098/'").callback_url == "http://127.0.0.1:9098"
    assert parse_profile("").callback_url == ""
    for bad in ("https://127.0.0.1:9098", "http://10.0.0.1:9098", "http://127.0.0.1", "http://127.0.0.1:9098/x"):
        with pytest.raises(ProfileError, match=r"\[urls\] callback"):
            parse_profile(f"[urls]\ncallback = '{bad}'", "mine.toml")
    monkeypatch.setenv("AE_STACK_DIR", str(tmp_path))
    assert StackTarget.from_userdata({"stack": "native"}).callback_url == native.callback_url()
    assert native.stack_env()["AE_HTTP_ALLOWED_BASE_URLS"] == native.callback_url()
    serve = StackTarget.from_userdata({"target": str(TARGETS / "serve.toml")})
    assert serve.callback_url == serve_stack.callback_url()
    assert serve_stack.environment(load_profile(TARGETS / "serve.toml"), "postgresql://db/x", "redis://r/1")[
        "AE_HTTP_ALLOWED_BASE_URLS"] == serve_stack.callback_url()
    assert StackTarget.from_userdata({"stack": "native", "callback_url": "http://127.0.0.1:9"}).callback_url == \
        "http://127.0.0.1:9"
