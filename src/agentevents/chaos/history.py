"""The history checker of a chaos run: pure logic over what the clients received and what the
archive holds. Nothing here does I/O.

A *session* is one user's pursuit of one run: its connections (a fault may cut one; the
session reconnects and resumes) and the run it was told about (``run_accepted``). The checker
states, for every accepted run, what the protocol promises:

- **gaps**: the thread's seqs, over all the session's connections, have no hole from 1 to the
  highest received (one run per thread);
- **lost**: every event the archive holds of the thread was received;
- **duplicates with a different id**: one ``event_id`` per seq, and every copy of a seq is the
  same text byte for byte;
- **reordered**: each connection receives a thread's seqs strictly increasing;
- **cross-user**: every event a connection receives carries its user's id and one of its
  user's threads;
- **completion**: exactly one ``agent_completed`` per accepted run, and it is the thread's last
  event;
- **archive**: the archive holds every received seq of the thread with the same text.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("lost", "gaps", "duplicates_different_id", "reordered", "cross_user", "completion",
              "archive_missing", "archive_mismatch")


@dataclass(frozen=True)
class Received:
    """One event frame as a connection received it."""

    connection: str
    seq: int
    event_id: str
    type: str
    thread_id: str
    run_id: str
    user_id: str
    raw: str

    @classmethod
    def of(cls, connection: str, raw: str, data: dict[str, Any]) -> Received:
        return cls(connection, int(data.get("seq") or 0), str(data.get("event_id")), str(data.get("type")),
                   str(data.get("thread_id")), str(data.get("run_id")), str(data.get("user_id")), raw)


@dataclass
class Session:
    user_id: str
    run_id: str
    thread_id: str
    connections: dict[str, list[Received]] = field(default_factory=dict)  # connection → events, in order


@dataclass
class Verdict:
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    events: int = 0
    runs: int = 0

    def add(self, category: str, example: str, n: int = 1) -> None:
        self.counts[category] += n
        if len(self.examples[category]) < 5:
            self.examples[category].append(example)

    @property
    def violations(self) -> int:
        return sum(self.counts[c] for c in CATEGORIES)

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "events": self.events, "violations": self.violations,
                "counts": {c: self.counts[c] for c in CATEGORIES},
                "examples": {c: v for c, v in self.examples.items() if v}}


def check(sessions: list[Session], archive: dict[str, dict[int, str]] | None = None) -> Verdict:
    """Judge every session; ``archive`` maps thread → seq → archived text (None: not checked)."""
    verdict = Verdict()
    threads_of: dict[str, set[str]] = defaultdict(set)
    for s in sessions:
        threads_of[s.user_id].add(s.thread_id)
    for s in sessions:
        verdict.runs += 1
        _check_session(s, threads_of[s.user_id], verdict)
        if archive is not None:
            _check_archive(s, archive.get(s.thread_id, {}), verdict)
    return verdict


def _check_session(s: Session, own_threads: set[str], verdict: Verdict) -> None:
    by_seq: dict[int, set[str]] = defaultdict(set)
    ids: dict[int, set[str]] = defaultdict(set)
    completions: set[str] = set()
    for name, events in s.connections.items():
        last = 0
        for e in events:
            verdict.events += 1
            if e.user_id != s.user_id or e.thread_id not in own_threads:
                verdict.add("cross_user", f"{name} of {s.user_id} got seq {e.seq} of thread {e.thread_id} "
                                          f"for user {e.user_id}")
                continue
            if e.thread_id != s.thread_id:
                continue  # another of this user's threads, judged in its own session
            if e.seq <= last:
                verdict.add("reordered", f"{name}: seq {e.seq} after {last} in thread {s.thread_id}")
            last = max(last, e.seq)
            by_seq[e.seq].add(e.raw)
            ids[e.seq].add(e.event_id)
            if e.type == "agent_completed" and e.run_id == s.run_id:
                completions.add(e.event_id)
    if len(completions) != 1:
        verdict.add("completion", f"run {s.run_id}: {len(completions)} agent_completed")
    for seq in sorted(ids):
        if len(ids[seq]) > 1 or len(by_seq[seq]) > 1:
            verdict.add("duplicates_different_id", f"thread {s.thread_id} seq {seq}: "
                                                   f"{len(ids[seq])} ids, {len(by_seq[seq])} texts")
    if not by_seq:
        return
    top = max(by_seq)
    missing = [seq for seq in range(1, top + 1) if seq not in by_seq]
    if missing:
        verdict.add("gaps", f"thread {s.thread_id}: missing seqs {_ranges(missing)} of 1..{top}", len(missing))
    end = next((e.seq for evs in s.connections.values() for e in evs
                if e.type == "agent_completed" and e.thread_id == s.thread_id), None)
    if end is not None and top != end:
        verdict.add("completion", f"thread {s.thread_id}: events after agent_completed (seq {end}) up to {top}")


def _check_archive(s: Session, archived: dict[int, str], verdict: Verdict) -> None:
    received: dict[int, str] = {}
    for events in s.connections.values():
        for e in events:
            if e.thread_id == s.thread_id:
                received.setdefault(e.seq, e.raw)
    lost = sorted(set(archived) - set(received))
    if lost:
        verdict.add("lost", f"thread {s.thread_id}: archived seqs {_ranges(lost)} never received", len(lost))
    missing = sorted(set(received) - set(archived))
    if missing:
        verdict.add("archive_missing", f"thread {s.thread_id}: seqs {_ranges(missing)} received but not archived",
                    len(missing))
    wrong = [seq for seq in received if seq in archived and archived[seq] != received[seq]]
    if wrong:
        verdict.add("archive_mismatch", f"thread {s.thread_id}: seqs {_ranges(sorted(wrong))} archived with "
                                        f"other text", len(wrong))


def _ranges(seqs: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``1-3, 7`` (at most five ranges shown)."""
    out: list[str] = []
    start = prev = seqs[0]
    for seq in seqs[1:] + [None]:  # type: ignore[list-item]
        if seq is not None and seq == prev + 1:
            prev = seq
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if seq is not None:
            start = prev = seq
    return ", ".join(out[:5]) + (f" (+{len(out) - 5} more)" if len(out) > 5 else "")
