"""Reading a thread's history for replay: the Redis stream first, the PostgreSQL archive for
what the stream no longer holds."""

from __future__ import annotations

import logging
from typing import Any

from .. import store
from ..bus import Bus
from ..protocol.replay import ReplayPlan, ReplayResult, assemble

log = logging.getLogger("agentevents.history")


class History:
    def __init__(self, bus: Bus, database: Any) -> None:
        self.bus = bus
        self.database = database  # a LazyPool; may be unavailable

    async def fetch(self, thread_id: str, since: int, head: int) -> ReplayResult[bytes]:
        plan = ReplayPlan(since, head)
        if head <= since:
            return assemble(plan)
        recent = await self.bus.history(thread_id, since + 1, head)
        first = recent[0][0] if recent else None
        older: list[tuple[int, bytes]] = []
        span = plan.archive_range(first)
        if len(span):
            try:
                pool = await self.database.get()
                older = await store.archived_events(pool, thread_id, span.start, span.stop - 1)
            except Exception as exc:
                log.warning("archive_unavailable thread_id=%s range=%d-%d error=%s", thread_id, span.start,
                            span.stop - 1, exc)
        return assemble(plan, recent, older)
