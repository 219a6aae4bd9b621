"""``http_api``: call a JSON HTTP API on a loopback host the server allows (never anything else).

The base URL comes from ``ctx.settings["http_api_base_url"]`` (the run's
``options.http_api_base_url``, else the server's ``AE_HTTP_API_BASE_URL``) and is called only when
it is, or lies under, one of ``ctx.settings["http_api_allowed_base_urls"]`` (the server's
``AE_HTTP_ALLOWED_BASE_URLS`` and ``AE_HTTP_API_BASE_URL``); with no allow-list nothing is called.
Redirects and proxies are disabled so a request can never leave the service it was meant for.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from agentevents.tools.base import ToolContext, ToolError, ToolResult

SETTING = "http_api_base_url"
ALLOWED_SETTING = "http_api_allowed_base_urls"
MAX_RESPONSE_BYTES = 1_000_000
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (no DNS lookups)."""
    host = host.lower().strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_dot_segment(path: str) -> bool:
    """True when a path has a ``.`` or ``..`` segment, also percent-encoded (it could climb out
    of the allowed base)."""
    return any(unquote(segment) in (".", "..") for segment in path.split("?", 1)[0].split("/"))


def normalise_base_url(base_url: str) -> str:
    """``HTTP://LocalHost:80/api/`` -> ``http://localhost:80/api``: scheme and host in lower case,
    the port written out, no trailing slash. ValueError (the reason) unless it is an http(s) URL of
    a loopback host without credentials, query, fragment or dot segments."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be http(s)://host[:port]")
    if parts.username or parts.password or parts.query or parts.fragment or "?" in base_url or "#" in base_url:
        raise ValueError("must not contain credentials, query or fragment")
    if not is_loopback_host(parts.hostname):
        raise ValueError(f"host {parts.hostname!r} is not a loopback address")
    if _has_dot_segment(parts.path) or any(c.isspace() for c in parts.path):
        raise ValueError("its path must not contain '.' or '..' segments or whitespace")
    scheme = parts.scheme.lower()
    port = port or (443 if scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def check_base_url(base_url: Any) -> tuple[str, str]:
    """Validate the base URL; return (normalised base without trailing slash, "host:port")."""
    if not isinstance(base_url, str) or not base_url:
        raise ToolError("api_not_configured", f"setting {SETTING!r} is not set")
    try:
        normalise_base_url(base_url)
    except ValueError as exc:
        raise ToolError("api_host_not_allowed", f"base URL {exc}") from None
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return base_url.rstrip("/"), f"{host}:{port}"


def is_allowed(base_url: str, allowed: Any) -> bool:
    """True when ``base_url`` is one of ``allowed`` (normalised base URLs) or lies under one of
    them, segment by segment: ``http://127.0.0.1:80/api/v2`` is under ``http://127.0.0.1:80/api``,
    ``http://127.0.0.1:80/apix`` is not."""
    try:
        base = normalise_base_url(base_url)
    except ValueError:
        return False
    for entry in allowed or ():
        try:
            entry = normalise_base_url(entry)
        except ValueError:
            continue
        if base == entry or base.startswith(entry + "/"):
            return True
    return False


def check_allowed(base_url: str, allowed: Any) -> None:
    """ToolError ``api_host_not_allowed`` unless the server allows this base URL."""
    if not is_allowed(base_url, allowed):
        raise ToolError("api_host_not_allowed",
                        f"{base_url} is not a service this server allows the http_api tool to call "
                        "(options.http_api_base_url may only name one of the server's configured base URLs)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # a 3xx is returned to the caller as-is


def fetch(url: str, method: str, body: dict[str, Any] | None, timeout: float) -> Response:
    """Blocking HTTP request without proxies or redirects; HTTP error statuses are returned."""
    data = json.dumps(body).encode("utf-8") if body is not None else None
    headers = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(request, timeout=timeout) as response:
            return Response(
                response.status, response.headers.get("Content-Type", ""), response.read(MAX_RESPONSE_BYTES)
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return Response(exc.code, exc.headers.get("Content-Type", ""), exc.read(MAX_RESPONSE_BYTES))


def decode_body(response: Response) -> tuple[Any, str]:
    """Parsed JSON when possible (format "json"), else text (format "text")."""
    text = response.body.decode("utf-8", errors="replace")
    if not text.strip():
        return text, "text"
    try:
        return json.loads(text), "json"
    except ValueError:
        return text, "text"


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "pattern": r"^/[^\s#]*$", "maxLength": 2000},
        "method": {"type": "string", "enum": ["GET", "POST"], "default": "GET"},
        "body": {"type": "object"},
    },
    "required": ["path"],
    "additionalProperties": False,
}


class HttpApiTool:
    name = "http_api"
    description = (
        "Call the server's configured local HTTP API (loopback only): GET or POST a path, JSON body optional."
    )
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = "tools:http"
    timeout_s = 10.0
    category = "api"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        base, service = check_base_url(ctx.settings.get(SETTING))
        check_allowed(base, ctx.settings.get(ALLOWED_SETTING))
        path, method, body = params.get("path", ""), params.get("method", "GET"), params.get("body")
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            raise ToolError("invalid_params", "path must start with '/' and contain no whitespace")
        if _has_dot_segment(path):
            raise ToolError("invalid_params", "path must not contain '.' or '..' segments")
        if method not in ("GET", "POST"):
            raise ToolError("invalid_params", "method must be GET or POST")
        if body is not None and method != "POST":
            raise ToolError("invalid_params", "a body is only allowed with POST")
        try:
            response = await asyncio.to_thread(fetch, base + path, method, body, self.timeout_s)
        except TimeoutError:
            raise ToolError("api_timeout", f"{service} did not answer within {self.timeout_s}s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise ToolError("api_timeout", f"{service} did not answer within {self.timeout_s}s") from None
            raise ToolError("api_unreachable", f"cannot reach {service}: {reason}") from None
        value, fmt = decode_body(response)
        metadata = {
            "service": service,
            "format": fmt,
            "status": response.status,
            "method": method,
            "path": path,
            "ok": 200 <= response.status < 300,
        }
        return ToolResult(result={"status": response.status, "body": value}, metadata=metadata)
