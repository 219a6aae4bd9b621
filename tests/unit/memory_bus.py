"""An in-memory stand-in for agentevents.bus.Bus, for unit tests of the bridge, the engine, the
dispatcher and the gateway handlers (no Redis)."""

from __future__ import annotations

from typing import Any

import orjson

from agentevents.protocol import envelope as ev


class MemoryBus:
    def __init__(self) -> None:
        self.seq: dict[str, int] = {}
        self.payloads: dict[str, list[tuple[int, bytes]]] = {}
        self.events: list[dict[str, Any]] = []  # every published event, with its seq, in order
        self.owners: dict[str, str] = {}
        self.runs: dict[str, dict[str, str]] = {}
        self.controls: list[dict[str, Any]] = []

    async def publish_events(self, events: list[dict[str, Any]], publisher: str | None = None,
                             ) -> tuple[int, list[bytes], bool]:
        tid = events[0]["thread_id"]
        first = self.seq.get(tid, 0) + 1
        payloads = []
        for i, event in enumerate(events):
            payload = ev.splice_seq(orjson.dumps(event), first + i)
            self.payloads.setdefault(tid, []).append((first + i, payload))
            self.events.append(orjson.loads(payload))
            payloads.append(payload)
        self.seq[tid] = first + len(events) - 1
        return first, payloads, True

    async def publish_event(self, event: dict[str, Any]) -> tuple[int, bytes, bool]:
        seq, payloads, fresh = await self.publish_events([event])
        return seq, payloads[0], fresh

    async def head_seq(self, tid: str) -> int:
        return self.seq.get(tid, 0)

    async def thread_owner(self, tid: str) -> str | None:
        return self.owners.get(tid)

    async def claim_thread(self, tid: str, user_id: str, created_at: str) -> bool:
        return self.owners.setdefault(tid, user_id) == user_id

    async def reserve_run(self, user_id: str, run_id: str, limit: int) -> bool:
        return True

    async def release_run(self, user_id: str, run_id: str) -> None:
        return None

    async def submit_run(self, request: dict[str, Any], *, new_thread_at: str | None = None) -> bool:
        if new_thread_at is not None and not await self.claim_thread(request["thread_id"], request["user_id"],
                                                                     new_thread_at):
            return False
        self.runs.setdefault(request["run_id"], {"user_id": request["user_id"], "thread_id": request["thread_id"],
                                                 "status": "queued", "agent_type": request["agent_type"]})
        return True

    async def run_info(self, run_id: str) -> dict[str, str]:
        return dict(self.runs.get(run_id, {}))

    async def send_control(self, message: dict[str, Any]) -> None:
        self.controls.append(message)

    async def set_run_status(self, run_id: str, user_id: str, status: str, worker: str = "") -> None:
        self.runs.setdefault(run_id, {})["status"] = status

    async def record_run(self, thread_id: str, run_id: str) -> tuple[int, str | None]:
        return 0, None

    async def cancel_requested(self, run_id: str) -> bool:
        return False

    async def wait_answer(self, run_id: str, approval_id: str, timeout_s: float) -> dict[str, Any] | None:
        return {"approved": True}
