"""http_api: loopback-only base URL, the server's allow-list, request building and response
decoding (no real network)."""

from __future__ import annotations

import asyncio
import urllib.error
from typing import Any

import pytest

from agentevents.tools import http_api
from agentevents.tools.base import ToolContext, ToolError, ToolResult
from agentevents.tools.http_api import (
    HttpApiTool,
    Response,
    check_base_url,
    decode_body,
    is_allowed,
    is_loopback_host,
    normalise_base_url,
)

ALLOWED = ("http://127.0.0.1:8080/api",)


def ctx(base_url: str | None = "http://127.0.0.1:8080/api/", allowed: Any = ALLOWED) -> ToolContext:
    settings: dict[str, Any] = {} if base_url is None else {"http_api_base_url": base_url}
    if allowed is not None:
        settings["http_api_allowed_base_urls"] = allowed
    return ToolContext(user_id="u1", thread_id="t1", run_id="r1", settings=settings)


def call(params: dict[str, Any], context: ToolContext | None = None) -> ToolResult:
    return asyncio.run(HttpApiTool().run(params, context or ctx()))


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.5.6.7", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["example.com", "10.0.0.1", "0.0.0.0", "169.254.169.254", "::", "127.1", "localhost.evil"]
)
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


def test_check_base_url_normalises() -> None:
    assert check_base_url("http://127.0.0.1:8080/api/") == ("http://127.0.0.1:8080/api", "127.0.0.1:8080")
    assert check_base_url("http://localhost") == ("http://localhost", "localhost:80")
    assert check_base_url("https://[::1]:9443") == ("https://[::1]:9443", "[::1]:9443")


@pytest.mark.parametrize(
    "base_url",
    [
        "http://example.com/",
        "http://169.254.169.254/latest",
        "ftp://127.0.0.1/",
        "http://user:secret@127.0.0.1/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1/?q=1",
        "127.0.0.1:8080",
    ],
)
def test_refuses_non_loopback_or_odd_base_urls(base_url: str) -> None:
    with pytest.raises(ToolError) as info:
        check_base_url(base_url)
    assert info.value.code == "api_host_not_allowed"


def test_not_configured() -> None:
    with pytest.raises(ToolError) as info:
        call({"path": "/health"}, ctx(None))
    assert info.value.code == "api_not_configured"


def test_host_check_happens_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any) -> Response:
        raise AssertionError("must not fetch")

    monkeypatch.setattr(http_api, "fetch", boom)
    with pytest.raises(ToolError) as info:
        call({"path": "/"}, ctx("http://example.com"))
    assert info.value.code == "api_host_not_allowed"


def test_get_parses_json(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    def fake_fetch(url: str, method: str, body: Any, timeout: float) -> Response:
        seen.append((url, method, body, timeout))
        return Response(200, "application/json", b'{"ok": true, "items": [1, 2]}')

    monkeypatch.setattr(http_api, "fetch", fake_fetch)
    result = call({"path": "/items?page=2"})
    assert seen == [("http://127.0.0.1:8080/api/items?page=2", "GET", None, 10.0)]
    assert result.result == {"status": 200, "body": {"ok": True, "items": [1, 2]}}
    assert result.metadata["service"] == "127.0.0.1:8080"
    assert result.metadata["format"] == "json"


def test_post_sends_body_and_returns_error_status(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_fetch(url: str, method: str, body: Any, timeout: float) -> Response:
        assert (method, body) == ("POST", {"name": "x"})
        return Response(422, "text/plain", b"bad input")

    monkeypatch.setattr(http_api, "fetch", fake_fetch)
    result = call({"path": "/things", "method": "POST", "body": {"name": "x"}})
    assert result.result == {"status": 422, "body": "bad input"}
    assert result.metadata["format"] == "text"
    assert result.metadata["ok"] is False


def test_body_with_get_is_refused() -> None:
    with pytest.raises(ToolError) as info:
        call({"path": "/x", "body": {"a": 1}})
    assert info.value.code == "invalid_params"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), "api_unreachable"),
        (urllib.error.URLError(TimeoutError("timed out")), "api_timeout"),
        (TimeoutError("timed out"), "api_timeout"),
    ],
)
def test_transport_errors(monkeypatch: pytest.MonkeyPatch, error: Exception, code: str) -> None:
    def fake_fetch(*args: Any) -> Response:
        raise error

    monkeypatch.setattr(http_api, "fetch", fake_fetch)
    with pytest.raises(ToolError) as info:
        call({"path": "/x"})
    assert info.value.code == code


def test_decode_body() -> None:
    assert decode_body(Response(200, "", b"[1, 2]")) == ([1, 2], "json")
    assert decode_body(Response(200, "", b"plain")) == ("plain", "text")
    assert decode_body(Response(204, "", b"")) == ("", "text")


def test_tool_attributes() -> None:
    tool = HttpApiTool()
    assert (tool.name, tool.category, tool.permission) == ("http_api", "api", "tools:http")


# -- the server's allow-list ----------------------------------------------------------------------

def test_normalise_base_url() -> None:
    assert normalise_base_url("HTTP://LocalHost/api/") == "http://localhost:80/api"
    assert normalise_base_url("https://[::1]") == "https://[::1]:443"
    assert normalise_base_url("http://127.0.0.1:8098") == "http://127.0.0.1:8098"


@pytest.mark.parametrize("url", ["http://example.com", "http://127.0.0.1:8098/a/../b", "http://127.0.0.1:8098/%2e%2e",
                                 "http://u:p@127.0.0.1:8098", "http://127.0.0.1:8098?x=1", "ftp://127.0.0.1"])
def test_normalise_refuses_what_could_not_be_allowed(url: str) -> None:
    with pytest.raises(ValueError):
        normalise_base_url(url)


@pytest.mark.parametrize(("base", "allowed"), [
    ("http://127.0.0.1:8080/api", True),
    ("http://127.0.0.1:8080/api/", True),
    ("http://127.0.0.1:8080/api/v2", True),
    ("HTTP://127.0.0.1:8080/api", True),
    ("http://127.0.0.1:8080/apix", False),
    ("http://127.0.0.1:8080", False),
    ("http://127.0.0.1:8081/api", False),
    ("http://localhost:8080/api", False),
    ("https://127.0.0.1:8080/api", False),
    ("http://127.0.0.1:8080/api/../admin", False),
    ("http://127.0.0.1:8099", False),
])
def test_a_base_url_is_allowed_only_when_it_is_or_lies_under_an_allowed_one(base: str, allowed: bool) -> None:
    assert is_allowed(base, ALLOWED) is allowed


def test_nothing_is_allowed_without_an_allow_list() -> None:
    assert not is_allowed("http://127.0.0.1:8080/api", ())
    assert not is_allowed("http://127.0.0.1:8080/api", None)


@pytest.mark.parametrize("allowed", [(), None, ("http://127.0.0.1:9000",)])
def test_a_base_url_the_server_does_not_allow_is_refused_before_any_request(
        monkeypatch: pytest.MonkeyPatch, allowed: Any) -> None:
    def boom(*args: Any) -> Response:
        raise AssertionError("must not fetch")

    monkeypatch.setattr(http_api, "fetch", boom)
    with pytest.raises(ToolError) as info:
        call({"path": "/"}, ctx("http://127.0.0.1:8080/api", allowed))
    assert info.value.code == "api_host_not_allowed"
    assert "is not a service this server allows" in info.value.message


def test_a_path_climbing_out_of_the_base_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_api, "fetch", lambda *args: (_ for _ in ()).throw(AssertionError("must not fetch")))
    for path in ("/../admin", "/a/%2E%2E/b", "/./x"):
        with pytest.raises(ToolError) as info:
            call({"path": path})
        assert info.value.code == "invalid_params"
