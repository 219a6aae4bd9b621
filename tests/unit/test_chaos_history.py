"""The chaos history checker finds each kind of violation, and only it; the fault schedule."""

from __future__ import annotations

import random

import orjson
import pytest

from agentevents.chaos.history import CATEGORIES, Received, Session, check
from agentevents.chaos.schedule import KINDS, fault_schedule, run_script
from agentevents.protocol.conformance import validate_steps

USER, THREAD, RUN = "alice", "t-1", "r-1"


def event(seq: int, etype: str = "agent_thinking", *, user: str = USER, thread: str = THREAD, run: str = RUN,
          eid: str | None = None, text: str = "") -> dict:
    return {"seq": seq, "type": etype, "event_id": eid or f"e{thread}{seq}", "thread_id": thread, "run_id": run,
            "user_id": user, "data": {"reasoning": text}}


def received(conn: str, events: list[dict]) -> list[Received]:
    return [Received.of(conn, orjson.dumps(e).decode(), e) for e in events]


def healthy_run(n: int = 5) -> list[dict]:
    return [event(1, "agent_started")] + [event(s) for s in range(2, n)] + [event(n, "agent_completed")]


def session(*connections: list[dict]) -> Session:
    s = Session(USER, RUN, THREAD)
    for i, events in enumerate(connections):
        s.connections[f"c{i}"] = received(f"c{i}", events)
    return s


def archive_of(events: list[dict]) -> dict[str, dict[int, str]]:
    return {THREAD: {e["seq"]: orjson.dumps(e).decode() for e in events}}


def counts(verdict) -> dict[str, int]:
    return {c: n for c, n in verdict.counts.items() if n}


def test_a_healthy_history_split_over_a_reconnect_has_no_violation():
    events = healthy_run(6)
    verdict = check([session(events[:3], events[2:])], archive_of(events))  # seq 3 arrives twice, identical
    assert verdict.violations == 0, verdict.as_dict()
    assert verdict.runs == 1 and verdict.events == 7


@pytest.mark.parametrize("mutate, expected", [
    (lambda ev: [ev[:2] + ev[3:]], {"gaps": 1}),
    (lambda ev: [ev, [{**ev[2], "event_id": "other"}]], {"duplicates_different_id": 1}),
    (lambda ev: [ev, [{**ev[2], "data": {"reasoning": "changed"}}]], {"duplicates_different_id": 1}),
    (lambda ev: [[ev[0], ev[2], ev[1]] + ev[3:]], {"reordered": 1}),
    (lambda ev: [ev + [event(9, user="bob", thread="t-bob")]], {"cross_user": 1}),
    (lambda ev: [ev[:-1]], {"completion": 1}),
    (lambda ev: [ev + [{**ev[-1], "seq": 6, "event_id": "second"}]], {"completion": 2}),
])
def test_each_violation_is_found(mutate, expected):
    events = healthy_run(5)
    verdict = check([session(*mutate(events))])
    assert counts(verdict) == expected, verdict.as_dict()


def test_the_archive_must_hold_every_received_event_with_the_same_text_and_nothing_unreceived():
    events = healthy_run(5)
    archive = archive_of(events)
    del archive[THREAD][3]
    archive[THREAD][2] = "tampered"
    archive[THREAD][6] = orjson.dumps(event(6)).decode()
    verdict = check([session(events)], archive)
    assert counts(verdict) == {"archive_missing": 1, "archive_mismatch": 1, "lost": 1}
    assert set(CATEGORIES) >= set(counts(verdict))


def test_the_fault_schedule_is_reproducible_spread_and_within_its_window():
    faults = fault_schedule(7, 25, 300.0)
    assert faults == fault_schedule(7, 25, 300.0)
    assert len(faults) == 25 and all(0 < f.at_s < 300 for f in faults)
    assert [f.at_s for f in faults] == sorted(f.at_s for f in faults)
    assert all(f.component in KINDS[f.kind][1] for f in faults)
    assert all((f.hold_s > 0) == f.kind.startswith("pause") for f in faults)


def test_every_chaos_script_is_a_valid_conformance_script():
    rng = random.Random(3)
    for index in range(200):
        validate_steps(run_script(rng, index)["steps"])
