"""Built-in agents with stable names: triage, math, research, data_analyst, team."""

from __future__ import annotations

import re
from typing import Any

from ..auth import PERM_SQL, has_permission
from ..worker.policy import OptionError, lower_only, seconds_option
from .base import AgentContext, AgentFailure, AgentOutcome
from .registry import AgentFactoryError, AgentSpec

_EXPR = re.compile(r"[-+*/().%\d\s^]+(?:\s*(?:sqrt|abs|round|log|sin|cos|tan)\([^)]*\))?[-+*/().%\d\s^]*")


def extract_expression(message: str) -> str | None:
    """The longest arithmetic expression in a message ("What is 12*(3+4)?" -> "12*(3+4)")."""
    candidates = [m.group().strip() for m in _EXPR.finditer(message)]
    candidates = [c for c in candidates if re.search(r"\d", c)]
    if not candidates:
        return None
    return max(candidates, key=len).replace("^", "**").strip(" .")


class TriageAgent:
    name = "triage"
    description = "Answers directly without tools and says which agent fits a request best"

    async def run(self, ctx: AgentContext) -> AgentOutcome:
        text = ctx.message.lower()
        earlier = ctx.context.get("previous_runs", 0)
        if earlier:
            await ctx.think(f"This thread has {earlier} earlier run(s); continuing from run "
                            f"{ctx.context.get('previous_run_id')}.", kind="context", previous_runs=earlier)
        await ctx.think("Reading the request to decide how to answer it.", kind="classification")
        if extract_expression(ctx.message):
            route = "math"
        elif any(w in text for w in ("table", "data", "sql", "sales", "average", "dataset")):
            route = "data_analyst"
        elif any(w in text for w in ("who", "what", "when", "where", "why", "explain", "research")):
            route = "research"
        else:
            route = "triage"
        await ctx.think(f"This request is best served by the {route} agent.", kind="routing",
                        confidence=0.8 if route != "triage" else 0.5)
        return AgentOutcome(result={"answer": f"Routing suggestion: {route}", "recommended_agent": route},
                            summary=f"Classified the request for the {route} agent without using tools.",
                            extra={"follow_up": [f"Start the {route} agent with this message"]})


class MathAgent:
    name = "math"
    description = "Solves arithmetic with the calculator tool"

    async def run(self, ctx: AgentContext) -> AgentOutcome:
        await ctx.think("Looking for the calculation in the question.", kind="analysis")
        expression = ctx.options.get("expression") or extract_expression(ctx.message)
        if not expression:
            raise AgentFailure("no_expression", "the message contains no calculation")
        await ctx.think(f"I will evaluate {expression} with the calculator.", kind="plan")
        outcome = await ctx.call_tool("calculator", {"expression": expression},
                                      purpose="evaluate the arithmetic expression")
        if not outcome.ok:
            raise AgentFailure("calculation_failed", (outcome.error or {}).get("message", "calculator failed"))
        value = outcome.result
        return AgentOutcome(result=value, summary=f"{expression} = {value}",
                            extra={"quality": {"confidence": 1.0, "method": "exact arithmetic"}})


class ResearchAgent:
    name = "research"
    description = "Searches the offline corpus and cites its sources"

    async def run(self, ctx: AgentContext) -> AgentOutcome:
        query = ctx.options.get("query") or ctx.message
        await ctx.think(f"Searching the knowledge base for: {query[:120]}", kind="plan")
        outcome = await ctx.call_tool("search", {"query": query, "limit": 3}, purpose="find relevant sources")
        hits = outcome.result if outcome.ok and isinstance(outcome.result, list) else []
        if not hits:
            await ctx.think("No source matched; answering that nothing was found.", kind="conclusion")
            return AgentOutcome(status="partial", result={"answer": "No sources found", "sources": []},
                                summary="Searched the corpus; nothing matched.")
        await ctx.think(f"Found {len(hits)} sources; the best is '{hits[0].get('title')}'.", kind="analysis")
        sources = [{"title": h.get("title"), "source": h.get("source")} for h in hits]
        return AgentOutcome(result={"answer": hits[0].get("snippet"), "sources": sources},
                            summary=f"Searched the corpus and cited {len(sources)} sources.",
                            extra={"follow_up": ["Ask for more detail on " + str(hits[0].get("title"))],
                                   "learnings": [f"'{hits[0].get('title')}' is the best source for: {query[:80]}"],
                                   "quality": {"confidence": outcome.metadata.get("confidence"),
                                               "method": "BM25 ranking over the offline corpus"}})


# The data analyst's SQL: the server's own queries, never text from the request. The agent picks
# one from the question (first matching words win) or takes the one named in ``options.sql``.
DATA_QUERIES: dict[str, str] = {
    "customers_by_country": "SELECT country, count(*) AS customers FROM customers GROUP BY country "
                            "ORDER BY customers DESC, country",
    "orders_by_status": "SELECT status, count(*) AS orders FROM orders GROUP BY status ORDER BY orders DESC, status",
    "revenue_by_category": "SELECT p.category, sum(o.quantity * p.price) AS revenue FROM orders o "
                           "JOIN products p ON p.id = o.product_id WHERE o.status <> 'cancelled' "
                           "GROUP BY p.category ORDER BY revenue DESC",
    "top_products": "SELECT p.name, sum(o.quantity) AS units FROM orders o JOIN products p ON p.id = o.product_id "
                    "GROUP BY p.name ORDER BY units DESC, p.name LIMIT 5",
    "low_stock": "SELECT name, stock FROM products WHERE stock < 50 ORDER BY stock, name",
    "order_count": "SELECT count(*) AS orders FROM orders",
    "product_count": "SELECT count(*) AS products FROM products",
    "customer_count": "SELECT count(*) AS customers FROM customers",
}
_QUERY_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("country", "countries"), "customers_by_country"),
    (("status",), "orders_by_status"),
    (("revenue", "category", "categories", "turnover"), "revenue_by_category"),
    (("top", "best", "popular", "most sold"), "top_products"),
    (("stock", "inventory"), "low_stock"),
    (("order",), "order_count"),
    (("product",), "product_count"),
)
DEFAULT_QUERY = "customer_count"


def choose_query(message: str, named: Any = None) -> tuple[str, str]:
    """(name, SQL) of the server's query for a question, or of the one ``named``; AgentFactoryError
    when ``named`` is not one of :data:`DATA_QUERIES` (raw SQL from a client is never run)."""
    if named is not None:
        if isinstance(named, str) and named in DATA_QUERIES:
            return named, DATA_QUERIES[named]
        raise AgentFactoryError("options.sql must name one of the server's queries "
                                f"({', '.join(sorted(DATA_QUERIES))}); SQL text is not accepted")
    text = message.lower()
    for words, name in _QUERY_WORDS:
        if any(word in text for word in words):
            return name, DATA_QUERIES[name]
    return DEFAULT_QUERY, DATA_QUERIES[DEFAULT_QUERY]


class DataAnalystAgent:
    name = "data_analyst"
    description = "Answers questions about data with the server's SQL queries (tools:sql) and dataset analysis"

    def __init__(self, options: dict[str, Any]) -> None:
        self.named_query = options.get("sql")
        if self.named_query is not None:
            choose_query("", self.named_query)  # refuses an unknown name at creation
        self.tool_timeout_s = seconds_option(options, "tool_timeout_s")

    async def run(self, ctx: AgentContext) -> AgentOutcome:
        await ctx.think("Planning the analysis: summary statistics first.", kind="plan")
        results: dict[str, Any] = {}
        unavailable: list[str] = []
        analysis = await ctx.call_tool("analyze_data", {"dataset": ctx.options.get("dataset", "sales"),
                                                        "operation": "summary"}, purpose="summarize the dataset")
        if analysis.ok:
            results["summary"] = analysis.result
        if has_permission(ctx.run.permissions, PERM_SQL):
            query_name, sql = choose_query(ctx.message, self.named_query)
            tool = ctx.tools.tools.get("sql_query")
            own_limit = float(getattr(tool, "timeout_s", 10.0))
            query = await ctx.call_tool("sql_query", {"query": sql}, purpose=f"query the demo database ({query_name})",
                                        timeout_s=lower_only(self.tool_timeout_s, own_limit))
            if query.ok:
                results["query"] = query.result
            else:
                unavailable.append("database")
                await ctx.think("The database did not answer; continuing with the dataset analysis only.",
                                kind="degradation")
        else:
            await ctx.think("No SQL permission: answering from the dataset analysis only.", kind="constraint")
        if not results:
            return AgentOutcome(status="failed", result=results, summary="No data source answered.")
        if unavailable:
            return AgentOutcome(status="degraded", result=results,
                                summary=f"Partial analysis: {', '.join(unavailable)} unavailable.",
                                extra={"unavailable": unavailable})
        return AgentOutcome(result=results, summary=f"Analysed data with {len(ctx.tools.calls)} tool calls.")


class TeamAgent:
    """Two specialists collaborate; each event names the agent that produced it."""

    name = "team"
    description = "A research specialist and a math specialist collaborate on one request"

    async def run(self, ctx: AgentContext) -> AgentOutcome:
        await ctx.think("Splitting the request between the research and math specialists.",
                        agent_name="coordinator", kind="plan")
        found = await ctx.call_tool("search", {"query": ctx.message, "limit": 2}, agent_name="researcher")
        await ctx.think(f"The researcher found {len(found.result or [])} sources.", agent_name="researcher")
        expression = extract_expression(ctx.message) or "1+1"
        calc = await ctx.call_tool("calculator", {"expression": expression}, agent_name="mathematician")
        await ctx.think(f"The mathematician computed {calc.result}.", agent_name="mathematician")
        return AgentOutcome(result={"sources": found.result or [], "value": calc.result},
                            summary="Research and calculation combined.",
                            extra={"contributors": ["coordinator", "researcher", "mathematician"]})


def _spec(cls: type, **kw: Any) -> AgentSpec:
    return AgentSpec(name=cls.name, description=cls.description, factory=lambda _opts: cls(), **kw)


def _data_analyst(options: dict[str, Any]) -> DataAnalystAgent:
    try:
        return DataAnalystAgent(options)
    except OptionError as exc:
        raise AgentFactoryError(str(exc)) from None


SPECS: tuple[AgentSpec, ...] = (
    _spec(TriageAgent),
    _spec(MathAgent, tools=("calculator",)),
    _spec(ResearchAgent, tools=("search",)),
    AgentSpec(name=DataAnalystAgent.name, description=DataAnalystAgent.description, factory=_data_analyst,
              tools=("analyze_data", "sql_query")),
    _spec(TeamAgent, tools=("search", "calculator")),
)
