"""What a replay returns: exactly the missed events, in seq order, or an honest "incomplete".

Pure functions over lists of (seq, payload) pairs, so the rules are unit-tested without Redis or
PostgreSQL. The gateway reads the recent history from the Redis stream and, when the stream no
longer holds the start of the range, the older part from the PostgreSQL archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P")


@dataclass(frozen=True)
class ReplayPlan:
    """Which seqs a replay must return: ``since+1 .. head`` (empty when head <= since)."""

    since: int
    head: int

    @property
    def wanted(self) -> range:
        return range(self.since + 1, self.head + 1)

    def archive_range(self, first_in_stream: int | None) -> range:
        """The part the Redis stream no longer has (its oldest entry is ``first_in_stream``)."""
        if first_in_stream is None:
            return self.wanted
        return range(self.since + 1, min(first_in_stream, self.head + 1))


@dataclass(frozen=True)
class ReplayResult(Generic[P]):
    complete: bool
    events: list[tuple[int, P]]
    missing: list[int]


def assemble(plan: ReplayPlan, *sources: Iterable[tuple[int, P]]) -> ReplayResult[P]:
    """Merge sources (stream, archive) into exactly the wanted seqs, each once, in order.

    Complete only when every wanted seq was found. Like Centrifugo, an incomplete replay returns
    no events at all: a client never sees a history with a hole in it.
    """
    found: dict[int, P] = {}
    for source in sources:
        for seq, payload in source:
            if plan.since < seq <= plan.head and seq not in found:
                found[seq] = payload
    missing = [s for s in plan.wanted if s not in found]
    if missing:
        return ReplayResult(False, [], missing)
    return ReplayResult(True, [(s, found[s]) for s in plan.wanted], [])


def next_deliverable(last_delivered: int, seq: int) -> str:
    """Live-delivery rule per (connection, thread): 'deliver', 'duplicate', or 'gap'."""
    if seq <= last_delivered:
        return "duplicate"
    if seq == last_delivered + 1:
        return "deliver"
    return "gap"


def contiguous(seqs: Sequence[int], start: int) -> bool:
    return list(seqs) == list(range(start, start + len(seqs)))
