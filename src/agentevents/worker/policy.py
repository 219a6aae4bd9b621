"""What a client's ``start_agent.options`` may change, and what stays server policy.

A client may lower a limit, never raise it past the tier's or the server's: ``timeout_s`` (the
run's time limit) is at most the tier's ceiling (``AE_TIER_RUN_TIMEOUTS``, at most
``AE_RUN_TIMEOUT_S``); ``tool_timeout_s`` (a reference agent's tool calls) at most the tool's own
limit; a scripted step's ``timeout_s`` at most ``AE_TOOL_TIMEOUT_MAX_S``. A client never chooses an
address or a query the server did not allow: ``http_api_base_url`` must be one of the server's
allowed base URLs (checked by the ``http_api`` tool before it connects), and no agent runs SQL
from the options (``data_analyst`` picks among the server's own queries). An option of the wrong
type refuses the run at creation, with one line naming it. Pure: no I/O.
"""

from __future__ import annotations

import math
from typing import Any

from ..auth import TIERS
from ..config import Settings
from ..tools.http_api import ALLOWED_SETTING, SETTING


class OptionError(ValueError):
    """An option the server cannot take; the run is refused at creation with this message."""


def seconds_option(options: dict[str, Any], key: str) -> float | None:
    """A number of seconds from the options; None when absent or 0 (the server's default)."""
    value = options.get(key)
    if value is None or (value == 0 and not isinstance(value, bool)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise OptionError(f"options.{key} must be a number of seconds > 0, not {value!r}")
    return float(value)


def lower_only(requested: float | None, ceiling: float) -> float:
    """The requested limit when it is lower, else the ceiling."""
    return ceiling if requested is None else min(requested, ceiling)


def run_time_ceiling(tier: str, settings: Settings) -> float:
    """The most seconds a run of this tier may take: its AE_TIER_RUN_TIMEOUTS entry, never more
    than AE_RUN_TIMEOUT_S; an unknown tier gets the free tier's."""
    tiers = settings.tier_run_timeouts
    tier_limit = tiers.get(tier if tier in TIERS else "free", settings.run_timeout_s)
    return min(settings.run_timeout_s, tier_limit)


def run_time_limit(options: dict[str, Any], tier: str, settings: Settings) -> float:
    """The run's time limit: ``options.timeout_s`` when it is lower than the tier's ceiling."""
    return lower_only(seconds_option(options, "timeout_s"), run_time_ceiling(tier, settings))


def allowed_base_urls(settings: Settings) -> tuple[str, ...]:
    """The base URLs the http_api tool may call: AE_HTTP_ALLOWED_BASE_URLS and AE_HTTP_API_BASE_URL."""
    return settings.http_allowed_base_urls + ((settings.http_api_base_url,) if settings.http_api_base_url else ())


def tool_settings(options: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What the tools of a run see in ``ToolContext.settings``: the base URL the run asks for (else
    the server's) and the server's allow-list, which ``http_api`` checks it against."""
    return {SETTING: options.get(SETTING) or settings.http_api_base_url,
            ALLOWED_SETTING: allowed_base_urls(settings)}


def check_options(options: Any) -> None:
    """OptionError naming the first option of the wrong type (the run is refused at creation)."""
    if not isinstance(options, dict):
        raise OptionError(f"options must be an object, not {type(options).__name__}")
    for key in ("timeout_s", "tool_timeout_s"):
        seconds_option(options, key)
    for key in ("preferences", "files"):
        if key in options and not isinstance(options[key], dict):
            raise OptionError(f"options.{key} must be an object, not {type(options[key]).__name__}")
    base = options.get(SETTING)
    if base is not None and not isinstance(base, str):
        raise OptionError(f"options.{SETTING} must be a string (one of the server's allowed base URLs)")
