"""What a tool is: a name, a parameter schema, a permission, a timeout, and an async run.

Tools never emit events themselves: the dispatcher (``agentevents.tools.dispatcher``) wraps
every call with ``tool_executing`` / ``tool_completed``, so no tool can skip them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class ToolError(Exception):
    """A tool failed in a way the user should see. ``code`` is stable and documented."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass(frozen=True)
class ToolContext:
    """Who is calling and with what: handed to every tool run."""

    user_id: str
    thread_id: str
    run_id: str
    permissions: frozenset[str] = frozenset()
    # sql_query's sandbox (agentevents.tools.sql.SqlSandbox: its own pool, as its read-only role);
    # None when no database is configured. Never the archive owner's pool.
    db: Any = None
    # Files attached to the run request: name -> text content.
    files: dict[str, str] = field(default_factory=dict)
    # Free-form settings (e.g. the HTTP API tool's base URL and the server's allow-list).
    settings: dict[str, Any] = field(default_factory=dict)
    # Set by the dispatcher for each call: ``await ctx.report(partial)`` emits ``tool_progress``.
    report: Callable[[dict[str, Any]], Awaitable[None]] | None = None


@dataclass
class ToolResult:
    """What a tool returns: the result value and metadata shown in ``tool_completed``.

    Metadata keys used across tools: ``source`` (attribution), ``confidence`` (0..1),
    ``format`` (json|csv|text|number|table), ``cached`` (bool), ``version``,
    ``recommendations`` (list of next steps), ``progress`` (list of step descriptions).
    """

    result: Any
    metadata: dict[str, Any] = field(default_factory=dict)


class Tool(Protocol):
    name: str
    description: str
    # JSON Schema of the parameters; the dispatcher validates before run() is called.
    parameters: dict[str, Any]
    # Permission a token must hold to use this tool; None means every user may.
    permission: str | None
    timeout_s: float
    # Domain shown to users, e.g. "math", "search", "finance", "data", "files", "api", "custom".
    category: str

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult: ...


# Optional tool attributes the dispatcher honours (read with getattr):
#   version: str            shown as tool_version in tool_completed (default "1.0.0")
#   cacheable: bool         identical calls by the same user reuse the result (metadata.cached)
#   result_schema: dict     JSON Schema the result must satisfy, else status error/invalid_result
#   expected_s: float       after this long a tool_progress "slow" notice is sent
#   completion_status: str  status reported on success instead of "success" (e.g. rolled_back)
