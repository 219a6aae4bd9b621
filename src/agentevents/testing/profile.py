"""Target profiles: what the suite knows about the backend under test, one TOML file per backend.

A profile names where the backend is (ws/wss URLs, TLS CA), how to sign its test tokens
(algorithm, key, issuer, audience, claim and permission names), the limits it declares (token
grace, runs per tier, event budget …), the capabilities it offers (``testing.capabilities``) and,
optionally, its control endpoint (``[control] url`` and ``secret``, docs/conformance.md §7).
``features/targets/*.toml`` holds ours; ``example.toml`` is the commented template for someone
else's backend. behave's ``-D`` values override single entries (``-D ws_url=…``, ``-D jwt_secret=…``).
Pure: reading the file is the only I/O.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..protocol.conformance import CONFORMANCE_VERSION
from .capabilities import unknown

STACKS = ("native", "docker", "serve", "external")
# Capabilities only a control implementation can provide (the protocol alone cannot).
CONTROL_CAPABILITIES = ("fault_control", "process_stats", "archive_query", "audit_query", "token_revocation")


class ProfileError(Exception):
    """A profile that cannot be used: one line naming the file and what is wrong."""


@dataclass(frozen=True)
class TokenSpec:
    algorithm: str = "HS256"
    secret: str = ""            # HS*: the shared secret ("" = the native stack's generated one)
    private_key_file: str = ""  # RS*/ES*: the PEM the suite signs with
    issuer: str = "agentevents"
    audience: str = "agentevents-ws"
    user_claim: str = "sub"
    permissions_claim: str = "permissions"
    tier_claim: str = "tier"
    # What the suite asks for, by the backend's own permission names.
    permissions: dict[str, str] = field(default_factory=lambda: {
        "conformance_agent": "agents:script", "sql": "tools:sql", "http": "tools:http", "premium": "agents:premium"})

    def signing_key(self) -> str:
        if self.algorithm.startswith("HS"):
            return self.secret
        if not self.private_key_file:
            raise ProfileError(f"tokens.algorithm = {self.algorithm} needs tokens.private_key_file")
        try:
            return Path(self.private_key_file).read_text()
        except OSError as exc:
            raise ProfileError(f"cannot read tokens.private_key_file {self.private_key_file}: {exc.strerror}") from None


@dataclass(frozen=True)
class Limits:
    token_grace_s: float = 2.0
    runs_per_tier: dict[str, int] = field(default_factory=lambda: {"free": 5, "early": 10, "mid": 20,
                                                                   "enterprise": 50})
    event_budget: int = 2000
    thought_length: int = 4000
    inbound_per_s: int = 20
    tool_calls_before_limit: int = 10
    outbound_queue: int = 2000


@dataclass(frozen=True)
class Profile:
    name: str
    stack: str = "external"      # what `agentevents spec --target` starts: native, docker, serve; external: nothing
    ws_url: str = ""
    wss_url: str = ""
    tls_ca: str = ""
    # Where the suite serves the HTTP service the http_api scenarios call (`callbacks`): a base URL
    # the backend allows its http_api tool; "" = any free loopback port.
    callback_url: str = ""
    conformance_version: str = CONFORMANCE_VERSION
    tokens: TokenSpec = field(default_factory=TokenSpec)
    limits: Limits = field(default_factory=Limits)
    capabilities: frozenset[str] = frozenset()
    control_url: str = ""     # the control endpoint ("" = none); secret from the environment (env:NAME)
    control_secret: str = ""
    path: str = ""

    def with_overrides(self, userdata: dict[str, str]) -> Profile:
        """-D values over the file's: stack, ws_url, wss_url, tls_ca, callback_url, jwt_secret, jwt_algorithm, …"""
        top = {k: userdata[k] for k in ("stack", "ws_url", "wss_url", "tls_ca", "callback_url") if userdata.get(k)}
        tokens = {key: userdata[d] for d, key in (("jwt_secret", "secret"), ("jwt_algorithm", "algorithm"),
                                                  ("jwt_issuer", "issuer"), ("jwt_audience", "audience"),
                                                  ("jwt_private_key_file", "private_key_file")) if userdata.get(d)}
        profile = dataclasses.replace(self, **top, tokens=dataclasses.replace(self.tokens, **tokens))
        if profile.stack not in STACKS:
            raise ProfileError(f"unknown -D stack={profile.stack!r}: use native, docker, serve or external")
        return profile


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ProfileError(f"{where}: [{key}] must be a table")
    return value


def _fields(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name: f for f in dataclasses.fields(cls)}
    extra = sorted(set(values) - set(known))
    if extra:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(extra)}")
    out = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, bool) or not isinstance(value, type(default) if not isinstance(default, float)
                                                       else (int, float)):
            raise ProfileError(f"{where}: {key} must be a {type(default).__name__}, not {value!r}")
        out[key] = float(value) if isinstance(default, float) else value
    return out


def _expand(value: str) -> str:
    """``env:NAME`` takes a value from the environment (secrets stay out of the file)."""
    if value.startswith("env:"):
        return os.environ.get(value[4:], "")
    return value


def _control(table: dict[str, Any], path: str) -> tuple[str, str]:
    """``[control]``: the endpoint's ``url`` (http or https) and bearer ``secret`` (env:NAME), both or neither."""
    extra = sorted(set(table) - {"url", "secret"})
    if extra:
        raise ProfileError(f"{path}: unknown key(s) in [control]: {', '.join(extra)}")
    if not table:
        return "", ""
    url, secret = table.get("url"), table.get("secret")
    if not isinstance(url, str) or not isinstance(secret, str):
        raise ProfileError(f"{path}: [control] needs url and secret, both strings")
    url = _expand(url)
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ProfileError(f"{path}: [control] url {url!r} is not an http:// or https:// URL")
    return url, _expand(secret)


def _callback(urls: dict[str, Any], path: str) -> str:
    """``[urls] callback``: an http://127.0.0.1:PORT (or localhost) URL the suite can listen on."""
    url = _expand(str(urls.get("callback", "")))
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or not port \
            or parts.path.strip("/"):
        raise ProfileError(f"{path}: [urls] callback {url!r} is not http://127.0.0.1:PORT")
    return url.rstrip("/")


def parse_profile(text: str, path: str = "<profile>") -> Profile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    allowed = {"name", "stack", "conformance_version", "urls", "tokens", "limits", "capabilities", "control"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise ProfileError(f"{path}: unknown key(s) {', '.join(extra)}")
    urls = _table(data, "urls", path)
    bad_urls = sorted(set(urls) - {"ws", "wss", "tls_ca", "callback"})
    if bad_urls:
        raise ProfileError(f"{path}: unknown key(s) in [urls]: {', '.join(bad_urls)}")
    tokens = dict(_table(data, "tokens", path))
    claims = tokens.pop("claims", {})
    permissions = tokens.pop("permissions", None)
    token_values = _fields(TokenSpec, {**tokens, **{f"{k}_claim": v for k, v in claims.items()}}, f"{path} [tokens]")
    for key in ("secret", "private_key_file"):
        if key in token_values:
            token_values[key] = _expand(token_values[key])
    if permissions is not None:
        if not isinstance(permissions, dict) or not all(isinstance(v, str) for v in permissions.values()):
            raise ProfileError(f"{path}: [tokens.permissions] maps names to the backend's permission strings")
        token_values["permissions"] = {**TokenSpec().permissions, **permissions}
    limits = _fields(Limits, _table(data, "limits", path), f"{path} [limits]")
    caps = _table(data, "capabilities", path)
    declared = caps.get("declared", [])
    if set(caps) - {"declared"} or not isinstance(declared, list):
        raise ProfileError(f"{path}: [capabilities] holds one key, declared = [names]")
    strange = unknown(declared)
    if strange:
        raise ProfileError(f"{path}: unknown capability {', '.join(strange)} (see docs/conformance.md)")
    control_url, control_secret = _control(_table(data, "control", path), path)
    profile = Profile(
        name=str(data.get("name") or Path(path).stem), stack=str(data.get("stack", "external")),
        ws_url=_expand(str(urls.get("ws", ""))), wss_url=_expand(str(urls.get("wss", ""))),
        tls_ca=_expand(str(urls.get("tls_ca", ""))), callback_url=_callback(urls, path),
        conformance_version=str(data.get("conformance_version", CONFORMANCE_VERSION)),
        tokens=TokenSpec(**token_values), limits=Limits(**limits), capabilities=frozenset(declared),
        control_url=control_url, control_secret=control_secret, path=path)
    if profile.stack not in STACKS:
        raise ProfileError(f"{path}: stack = {profile.stack!r}: use native, docker, serve or external")
    if profile.conformance_version != CONFORMANCE_VERSION:
        raise ProfileError(f"{path}: conformance_version {profile.conformance_version!r}; this suite speaks "
                           f"{CONFORMANCE_VERSION!r}")
    return profile


def load_profile(path: str | Path) -> Profile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read target profile {path}: {exc.strerror}") from None
    return parse_profile(text, str(path))
