"""The one check of every delivery, for every system: no loss, in order per stream, counted.

Every stream (a thread, a room, a group) carries events numbered 1, 2, 3, … by its publisher
(our streams: the thread's ``seq``). The checker keeps the next number it expects per stream:

- the expected number: delivered, in order;
- a higher number: delivered, and the numbers skipped are a gap (missing until they arrive);
- a lower number that was missing: delivered late, out of order;
- a lower number that was not missing: a duplicate (not counted as delivered);
- a stream nobody registered: counted as unknown.

Latency is the receive time minus the publish time carried in the event, both wall-clock seconds
of this machine. Measurements are windows: ``begin`` clears the counts (not the streams' state),
``end`` compares what arrived with what the publisher says it published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_TRACKED_GAP = 100_000  # a larger jump is counted, its numbers not kept one by one


@dataclass
class StreamState:
    next: int = 1
    missing: set[int] = field(default_factory=set)


@dataclass
class Window:
    delivered: int = 0
    duplicates: int = 0
    reordered: int = 0
    gaps: int = 0  # numbers skipped when a later one arrived (filled in later or not)
    unknown: int = 0
    bytes: int = 0
    first_at: float | None = None
    last_at: float | None = None
    latencies_ms: list[float] = field(default_factory=list)


class DeliveryChecker:
    def __init__(self, streams: list[str] | None = None, *, first: int = 1) -> None:
        self.streams: dict[str, StreamState] = {}
        self.window = Window()
        for name in streams or ():
            self.add(name, first=first)

    def add(self, stream: str, *, first: int = 1) -> None:
        self.streams[stream] = StreamState(next=first)

    def begin(self) -> None:
        self.window = Window()

    def record(self, stream: str, seq: int, sent_at: float, received_at: float, size: int = 0) -> None:
        w = self.window
        state = self.streams.get(stream)
        if state is None:
            w.unknown += 1
            return
        if seq == state.next:
            state.next += 1
        elif seq > state.next:
            skipped = seq - state.next
            w.gaps += skipped
            if skipped <= MAX_TRACKED_GAP:
                state.missing.update(range(state.next, seq))
            state.next = seq + 1
        elif seq in state.missing:
            state.missing.discard(seq)
            w.reordered += 1
        else:
            w.duplicates += 1
            return
        w.delivered += 1
        w.bytes += size
        if w.first_at is None:
            w.first_at = received_at
        w.last_at = received_at
        w.latencies_ms.append((received_at - sent_at) * 1000.0)

    def outstanding(self) -> int:
        """Numbers skipped and still missing, over all streams."""
        return sum(len(s.missing) for s in self.streams.values())

    def end(self, published: int) -> dict[str, Any]:
        """The window's counts against ``published`` events: lost is what never arrived."""
        w = self.window
        lost = max(0, published - w.delivered)
        # More than published: events of an earlier window (or, on the agent path, of runs whose end
        # was not seen) that arrived in this one.
        surplus = max(0, w.delivered - published)
        return {"published": published, "delivered": w.delivered, "lost": lost, "surplus": surplus,
                "duplicates": w.duplicates,
                "reordered": w.reordered, "gaps": w.gaps, "unknown": w.unknown,
                "ok": lost == 0 and surplus == 0 and w.duplicates == 0 and w.reordered == 0 and w.unknown == 0
                and w.gaps == 0,
                "bytes_per_event": (w.bytes / w.delivered) if w.delivered else 0.0}
