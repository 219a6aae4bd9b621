"""What a client's start_agent options may change: limits only downwards, addresses and queries
only among the server's (agentevents.worker.policy, through the real engine; no I/O)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from memory_bus import MemoryBus

from agentevents.agents.builtin import DATA_QUERIES, choose_query
from agentevents.agents.registry import AgentFactoryError, default_registry
from agentevents.config import Settings, parse_base_urls, parse_tier_run_timeouts
from agentevents.tools import builtin_tools, http_api
from agentevents.tools.base import ToolContext
from agentevents.tools.dispatcher import ToolDispatcher
from agentevents.tools.sql import check_read_only
from agentevents.worker import policy
from agentevents.worker.engine import ExecutionEngine

SETTINGS = Settings(jwt_secret="unit", run_timeout_s=300, tier_run_timeouts={"free": 60, "enterprise": 900})


# -- seconds -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, None), (2, 2.0), (0.5, 0.5)])
def test_seconds_options(value: Any, expected: float | None) -> None:
    assert policy.seconds_option({"timeout_s": value}, "timeout_s") == expected


@pytest.mark.parametrize("value", [-1, "30", True, float("inf"), float("nan"), [5]])
def test_a_seconds_option_of_the_wrong_kind_is_one_clear_error(value: Any) -> None:
    with pytest.raises(policy.OptionError, match=r"^options\.timeout_s must be a number of seconds > 0"):
        policy.seconds_option({"timeout_s": value}, "timeout_s")


@pytest.mark.parametrize(("tier", "requested", "limit"), [
    ("free", None, 60), ("free", 10, 10), ("free", 1000, 60),
    ("enterprise", None, 300), ("enterprise", 1000, 300), ("enterprise", 120, 120),
    ("early", 1000, 300), ("unknown", 1000, 60),
])
def test_timeout_s_may_lower_the_run_limit_never_raise_it(tier: str, requested: float | None, limit: float) -> None:
    assert policy.run_time_limit({"timeout_s": requested}, tier, SETTINGS) == limit


def test_tier_run_timeouts_parse_and_refuse_mistakes_naming_the_variable() -> None:
    assert parse_tier_run_timeouts("free=60, enterprise=900.5") == {"free": 60.0, "enterprise": 900.5}
    assert parse_tier_run_timeouts("") == {}
    for text in ("free", "gold=3", "free=0", "free=x", "free=-1", "free=inf"):
        with pytest.raises(ValueError, match="AE_TIER_RUN_TIMEOUTS"):
            parse_tier_run_timeouts(text)


def test_settings_read_the_run_and_tool_ceilings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AE_TIER_RUN_TIMEOUTS", "free=2")
    monkeypatch.setenv("AE_TOOL_TIMEOUT_MAX_S", "30")
    settings = Settings()
    assert settings.tier_run_timeouts == {"free": 2.0} and settings.tool_timeout_max_s == 30.0


# -- addresses ---------------------------------------------------------------------------------------

def test_the_allow_list_parses_and_refuses_what_it_could_never_call() -> None:
    assert parse_base_urls("http://127.0.0.1:8098, http://LOCALHOST:9000/api/") == (
        "http://127.0.0.1:8098", "http://localhost:9000/api")
    assert parse_base_urls("") == ()
    for text in ("http://example.com", "127.0.0.1:8098", "http://user:pw@127.0.0.1:1"):
        with pytest.raises(ValueError, match="AE_HTTP_ALLOWED_BASE_URLS"):
            parse_base_urls(text)


def test_tools_see_the_requested_base_url_and_the_servers_allow_list() -> None:
    settings = Settings(jwt_secret="unit", http_api_base_url="http://127.0.0.1:7000",
                        http_allowed_base_urls=("http://127.0.0.1:8098",))
    seen = policy.tool_settings({"http_api_base_url": "http://127.0.0.1:6379"}, settings)
    assert seen == {"http_api_base_url": "http://127.0.0.1:6379",
                    "http_api_allowed_base_urls": ("http://127.0.0.1:8098", "http://127.0.0.1:7000")}
    assert policy.tool_settings({}, settings)["http_api_base_url"] == "http://127.0.0.1:7000"
    assert not http_api.is_allowed("http://127.0.0.1:6379", seen["http_api_allowed_base_urls"])


@pytest.mark.parametrize(("options", "message"), [
    ([], "options must be an object"),
    ({"tool_timeout_s": "fast"}, "options.tool_timeout_s must be a number"),
    ({"http_api_base_url": ["http://127.0.0.1:8098"]}, "options.http_api_base_url must be a string"),
])
def test_options_of_the_wrong_type_are_named(options: Any, message: str) -> None:
    with pytest.raises(policy.OptionError, match=message):
        policy.check_options(options)


# -- queries -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("question", "name"), [
    ("How many customers do we have?", "customer_count"),
    ("Customers per country, please", "customers_by_country"),
    ("How many orders were placed?", "order_count"),
    ("Which orders have which status?", "orders_by_status"),
    ("Revenue by category", "revenue_by_category"),
    ("What are our top products?", "top_products"),
    ("Which products are low on stock?", "low_stock"),
    ("SELECT payload FROM public.events", "customer_count"),
])
def test_the_data_analyst_picks_a_server_query_from_the_question(question: str, name: str) -> None:
    assert choose_query(question) == (name, DATA_QUERIES[name])


def test_every_server_query_passes_the_guard() -> None:
    for sql in DATA_QUERIES.values():
        check_read_only(sql)


@pytest.mark.parametrize("named", ["SELECT payload FROM public.events", "drop_everything", 3])
def test_options_sql_may_only_name_a_server_query(named: Any) -> None:
    assert choose_query("anything", "top_products") == ("top_products", DATA_QUERIES["top_products"])
    with pytest.raises(AgentFactoryError, match="options.sql must name one of the server's queries"):
        choose_query("anything", named)


# -- through the engine --------------------------------------------------------------------------------

def run_agent(agent: str, options: dict[str, Any], settings: Settings = SETTINGS, *, tier: str = "free",
              permissions: tuple[str, ...] = ("agents:script",)) -> list[dict[str, Any]]:
    bus = MemoryBus()
    engine = ExecutionEngine(bus, None, default_registry(), settings, worker_id="worker-unit")
    request = {"run_id": "a" * 32, "thread_id": "b" * 32, "user_id": "alice-unit", "agent_type": agent,
               "message": "How many customers do we have?", "options": options, "permissions": list(permissions),
               "tier": tier}
    asyncio.run(engine.execute(request))
    return bus.events


def test_a_timeout_s_over_the_tiers_ceiling_does_not_lengthen_the_run() -> None:
    settings = Settings(jwt_secret="unit", run_timeout_s=300, tier_run_timeouts={"free": 0.2})
    end = run_agent("scripted", {"steps": [{"sleep": 5}], "timeout_s": 1000}, settings)[-1]["data"]
    assert (end["status"], end["timeout_s"]) == ("timeout", 0.2)


def test_a_lower_timeout_s_is_honoured() -> None:
    end = run_agent("scripted", {"steps": [{"sleep": 5}], "timeout_s": 0.1})[-1]["data"]
    assert (end["status"], end["timeout_s"]) == ("timeout", 0.1)


def test_a_timeout_s_of_the_wrong_type_refuses_the_run_at_creation() -> None:
    events = run_agent("scripted", {"steps": [], "timeout_s": "forever"})
    assert [e["type"] for e in events] == ["agent_error", "agent_completed"]
    assert events[0]["data"]["code"] == "agent_init_failed"
    assert events[0]["data"]["message"].startswith("options.timeout_s must be a number of seconds > 0")


def test_raw_sql_in_the_options_refuses_a_data_analyst_run() -> None:
    events = run_agent("data_analyst", {"sql": "SELECT payload FROM public.events"},
                       permissions=("tools:sql",))
    assert [e["type"] for e in events] == ["agent_error", "agent_completed"]
    assert "options.sql must name one of the server's queries" in events[0]["data"]["message"]
    assert not any(e["type"] == "tool_executing" for e in events)


def test_an_address_the_server_does_not_allow_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any) -> Any:
        raise AssertionError("must not fetch")

    monkeypatch.setattr(http_api, "fetch", boom)
    settings = Settings(jwt_secret="unit", http_allowed_base_urls=("http://127.0.0.1:8098",))
    events = run_agent("scripted", {"steps": [{"tool": "http_api", "params": {"path": "/forecast"}}],
                                    "http_api_base_url": "http://127.0.0.1:8099"}, settings,
                       permissions=("agents:script", "tools:http"))
    done = next(e["data"] for e in events if e["type"] == "tool_completed")
    assert (done["status"], done["error"]["code"]) == ("error", "api_host_not_allowed")
    assert "http://127.0.0.1:8099 is not a service this server allows" in done["error"]["message"]


class Sink:
    def __init__(self) -> None:
        self.completed: list[dict[str, Any]] = []

    async def tool_executing(self, data: dict[str, Any], *, agent_name: str | None = None) -> int:
        return 0

    async def tool_progress(self, data: dict[str, Any], *, agent_name: str | None = None) -> int:
        return 0

    async def tool_completed(self, data: dict[str, Any], *, agent_name: str | None = None) -> int:
        self.completed.append(data)
        return 0


def test_a_calls_timeout_s_is_held_to_the_servers_ceiling() -> None:
    sink = Sink()
    dispatcher = ToolDispatcher(builtin_tools(), sink, ToolContext("u", "t", "r"), max_timeout_s=0.05)
    outcome = asyncio.run(dispatcher.call("wait", {"seconds": 5}, timeout_s=100))
    assert (outcome.status, outcome.error["timeout_s"]) == ("timeout", 0.05)
    outcome = asyncio.run(dispatcher.call("wait", {"seconds": 0}, timeout_s=0.01))
    assert outcome.status == "success"


@pytest.mark.parametrize("options", [{"preferences": [1]}, {"preferences": "concise"}, {"files": "x"}])
def test_an_option_that_must_be_an_object_refuses_the_run_at_creation(options) -> None:
    events = run_agent("math", options)
    assert [e["type"] for e in events] == ["agent_error", "agent_completed"]
    assert events[0]["data"]["code"] == "agent_init_failed"
    assert next(iter(options)) in events[0]["data"]["message"]
