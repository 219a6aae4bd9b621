"""The fuzz run's pure half: the documented codes, the frames, what each deserves, the verdicts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from agentevents import fuzz
from agentevents.fuzz import (
    MALFORMED,
    CanaryRun,
    Expect,
    FrameGenerator,
    FuzzFrame,
    Raw,
    TokenKit,
    analyze,
    answer,
    check_canary_run,
    classify,
    dumps,
    refuse,
)

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
SECRET = "unit-test-secret-" + "x" * 40
NOW = 1_900_000_000.0


def section(number: int) -> str:
    return re.split(r"\n## ", PROTOCOL.split(f"\n## {number}. ", 1)[1], maxsplit=1)[0]


def kit() -> TokenKit:
    return TokenKit(SECRET, "fuzz-me", "fuzz-other")


def generator(seed: int = 1, stream: int = 0, **kw) -> FrameGenerator:
    return FrameGenerator(seed, stream, kit=kit(), clock=lambda: NOW, **kw)


# -- the documents ---------------------------------------------------------------------------------------


def test_the_error_codes_are_those_of_the_protocol_document():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section(8), re.M)) - {"code"}  # the header row
    assert documented == set(fuzz.ERROR_CODES)


def test_the_close_codes_are_those_of_the_protocol_document():
    rows = re.findall(r"^\| ([0-9, ]+) \|", section(9), re.M)
    documented = {int(code) for row in rows for code in row.split(",")}
    assert documented == set(fuzz.CLOSE_CODES)
    assert set(fuzz.BROKEN_CLOSES) <= documented


def test_the_limits_and_message_types_are_those_of_the_protocol_document():
    limits = section(10)
    assert f"| Client message size | {fuzz.MAX_MESSAGE_BYTES} bytes |" in limits
    assert "| Hard frame size | 1 MiB | close 1009 |" in limits and fuzz.HARD_FRAME_BYTES == 1024 * 1024
    assert f"| Nesting depth | {fuzz.MAX_DEPTH} levels" in limits
    assert f"burst {fuzz.INBOUND_BURST} |" in limits and f"1 error/s, burst {fuzz.ERROR_BURST} |" in limits
    messages = section(5).split("| Message | Answer | Schema |", 1)[1].split("\n\n", 1)[0]
    table = {name: next(a for a in re.findall(r"`([a-z_]+)`", answers) if a != "replay_complete")
             for name, answers in re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", messages, re.M)}
    assert table == fuzz.ANSWERS and set(table) == set(fuzz.CLIENT_TYPES)
    agents = re.search(r"\| `agent_type` \| required; one of (.*?) \(", section(5))[1]
    assert re.findall(r"`([a-z_]+)`", agents) == list(fuzz.AGENT_TYPES)


# -- generation ------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_frames_and_another_seed_others():
    first = [generator(7, 2).next() for _ in range(1)]  # warm-up of the caches does not change anything
    one, two, other = generator(7, 2), generator(7, 2), generator(8, 2)
    a = [one.next() for _ in range(300)]
    b = [two.next() for _ in range(300)]
    c = [other.next() for _ in range(300)]
    assert a == b
    assert [f.payloads for f in a] != [f.payloads for f in c]
    assert first[0] == a[0]


def test_every_kind_comes_up_and_each_frame_says_what_it_deserves():
    g = generator(3)
    kinds = {}
    for _ in range(1500):
        frame = g.next()
        kinds[frame.kind] = kinds.get(frame.kind, 0) + 1
        assert frame.payloads and frame.expect.answers | frame.expect.codes | frame.expect.closes
    assert set(kinds) | {"flood_errors", "flood_rate"} == set(FrameGenerator.KINDS)  # floods: rare, tested below


def test_a_chosen_kind_only():
    g = generator(kinds=["invalid_json", "size_limit"])
    assert {g.next().kind for _ in range(50)} == {"invalid_json", "size_limit"}
    with pytest.raises(ValueError, match="bogus"):
        generator(kinds=["bogus"])


def test_floods_exceed_the_budgets_and_must_be_closed_3501():
    g = generator()
    errors, rate = g.make("flood_errors"), g.make("flood_rate")
    assert errors.count > fuzz.ERROR_BURST + 10 and errors.expect.must_close and errors.expect.closes == {3501}
    assert rate.count > fuzz.INBOUND_BURST + fuzz.ERROR_BURST + 30 and rate.expect.answers == {"pong"}


def test_size_limit_frames_are_exactly_at_the_limits():
    g = generator(5)
    sizes = {len(f.payloads[0]): f.expect for f in (g.make("size_limit") for _ in range(100))}
    assert set(sizes) == {65535, 65536, 65537, 1048576, 1048577}
    assert sizes[65537] == refuse("message_too_large") and sizes[1048576] == refuse("message_too_large")
    assert sizes[1048577].must_close and sizes[1048577].closes == {1009}


def test_deep_nesting_reaches_a_thousand_levels_in_options_and_elsewhere():
    g = generator(9)
    frames = [g.make("deep_nesting") for _ in range(400)]
    assert any("1000 levels" in f.note and "in options" in f.note for f in frames)
    assert any("1000 levels" in f.note and "in thread_id" in f.note for f in frames)
    for frame in frames:
        if frame.note.startswith(("1000 ", "1025 ", "20000 ")):
            assert frame.expect.codes <= {"malformed_message", "message_too_large"} and not frame.expect.answers
    at_limit = [f for f in frames if f.note == "31 levels of object in options"]  # 1 + 31 = 32 levels
    assert at_limit and all(f.expect.answers == {"run_accepted"} for f in at_limit)
    over = [f for f in frames if f.note == "32 levels of object in options"]
    assert over and all(f.expect == Expect(codes=frozenset({"malformed_message"}), request_id=f.expect.request_id)
                        for f in over)


def test_invalid_utf8_is_closed_1007_in_a_text_frame_and_refused_in_a_binary_one():
    g = generator(4)
    text, binary = g.make("invalid_utf8_text"), g.make("invalid_utf8_binary")
    assert text.expect.closes == {1007} and text.expect.must_close and not text.binary
    assert binary.expect == MALFORMED and binary.binary


def test_any_text_frame_that_is_no_utf8_deserves_1007():
    g = generator(30, kinds=["invalid_json"])  # a flipped byte inside a character, within the first frames
    broken = 0
    for _ in range(100):
        frame = g.next()
        try:
            frame.payloads[0].decode("utf-8")
        except UnicodeDecodeError:
            broken += 1
            assert frame.binary or (frame.expect.closes == {1007} and frame.expect.must_close), frame
        else:
            assert frame.expect.closes != {1007}
    assert broken


def test_websocket_frames_on_the_wire():
    assert fuzz.ws_frame(0x1, b"hi") == b"\x81\x02hi"
    masked = fuzz.ws_frame(0x9, b"abcde", fin=False, mask=b"\x01\x02\x03\x04")
    assert masked[:2] == b"\x09\x85" and masked[2:6] == b"\x01\x02\x03\x04"
    assert bytes(b ^ masked[2 + i % 4] for i, b in enumerate(masked[6:])) == b"abcde"
    assert fuzz.ws_frame(0x2, b"x" * 70000)[1:10] == bytes([127]) + (70000).to_bytes(8, "big")


def test_framing_breaks_the_rfc_or_splits_messages():
    g = generator(6)
    frames = {f.note: f for f in (g.make("framing") for _ in range(300))}
    assert all(f.wire for f in frames.values())
    assert frames["unmasked"].expect.closes == {1002} and frames["unmasked"].expect.must_close
    assert frames["fragments"].expect.answers == {"pong"}
    assert frames["fragments_large"].expect == refuse("message_too_large")
    assert frames["fragments_huge"].expect.closes == {1009}


def test_markers_are_filled_with_real_ids_and_stand_ins_tell_the_role():
    payload = dumps({"type": "subscribe", "thread_id": fuzz.marker("VT", 3)}).encode()
    filled = fuzz.resolve(payload, {"victim_thread": ["t1", "t2"]})
    assert orjson.loads(filled)["thread_id"] == "t2"  # index 3 of two ids
    sample = orjson.loads(fuzz.with_samples(payload))["thread_id"]
    assert len(sample) == 32 and fuzz.role_of(sample) == "victim_thread" and fuzz.role_of("ab" * 16) == "nobody"


def test_raw_json_literals_and_nesting_without_recursion():
    assert dumps({"a": Raw("1e0"), Raw('"k"'): [Raw("-0.0"), 2**64]}) == '{"a":1e0,"k":[-0.0,18446744073709551616]}'
    deep = fuzz.nested(20000, "mixed")
    assert len(deep) > 60000 and fuzz.json_depth(orjson.loads(str(fuzz.nested(1000, "mixed")))) == 1000


def test_the_tokens_verify_as_labelled():
    """Clear-cut labels agree with the reference verifier; what the documents leave open is not asserted."""
    from agentevents.auth import AuthError, verify_token
    now = time.time()
    g = FrameGenerator(2, 0, kit=kit(), clock=lambda: now)
    for _ in range(600):
        g.token()
    checked = set()
    for token, expect in g.tokens.items():
        if expect not in (fuzz.REFRESHED, refuse("forbidden"), fuzz.INVALID):
            continue
        try:
            claims = verify_token(token, key=SECRET, algorithm="HS256", issuer="agentevents",
                                  audience="agentevents-ws")
        except AuthError:
            assert expect == fuzz.INVALID, token
        else:
            assert expect != fuzz.INVALID, token
            assert (claims.user_id == "fuzz-me" and claims.exp > now + 3600) == (expect == fuzz.REFRESHED), token
        checked.add(expect)
    assert checked == {fuzz.REFRESHED, refuse("forbidden"), fuzz.INVALID}


# -- what a frame deserves ---------------------------------------------------------------------------------


def deserved(obj) -> Expect:
    return analyze(dumps(obj).encode())


@pytest.mark.parametrize(("literal", "expected"), [
    ("0", answer("subscribed")), ("-0", answer("subscribed")), ("9223372036854775807", answer("subscribed")),
    ("1.0", answer("subscribed") | MALFORMED), ("1e0", answer("subscribed") | MALFORMED),
    ("-0.0", answer("subscribed") | MALFORMED),
    ("-1", MALFORMED), ("9223372036854775808", MALFORMED), ("18446744073709551616", MALFORMED),
    ('"1"', MALFORMED), ("true", MALFORMED), ("null", MALFORMED), ("NaN", MALFORMED),
])
def test_since_seq_edges(literal, expected):
    got = deserved({"type": "subscribe", "thread_id": fuzz.marker("OT", 0), "since_seq": Raw(literal)})
    assert (got.answers, got.codes) == (expected.answers, expected.codes)


def test_whose_threads_and_runs_decide():
    own, victim = fuzz.marker("OT", 1), fuzz.marker("VT", 1)
    assert deserved({"type": "subscribe", "thread_id": victim}).codes == {"forbidden"}
    assert deserved({"type": "subscribe", "thread_id": "not-mine"}).codes == {"forbidden"}
    assert deserved({"type": "unsubscribe", "thread_id": victim}).answers == {"unsubscribed"}
    assert deserved({"type": "resume", "threads": {victim: 0, own: 0}}).answers == {"resumed"}
    assert deserved({"type": "cancel_agent", "run_id": fuzz.marker("VR", 0)}).codes == {"forbidden"}
    assert deserved({"type": "cancel_agent", "run_id": fuzz.marker("OR", 0)}).answers == {"cancel_accepted"}
    start = {"type": "start_agent", "agent_type": "math", "message": "1+1"}
    assert deserved(start) == Expect(frozenset({"run_accepted"}), frozenset({"too_many_runs"}))
    assert deserved({**start, "thread_id": victim}).answers == frozenset()
    assert deserved({**start, "agent_type": "scripted"}).codes == {"forbidden", "too_many_runs"}
    assert deserved({**start, "agent_type": "nope"}).codes == {"unknown_agent", "too_many_runs"}


def test_frames_refused_at_the_door():
    assert analyze(b"{") == MALFORMED and analyze(b"[]") == MALFORMED and analyze(b"\xff") == MALFORMED
    assert deserved({"type": "nope", "request_id": "r"}) == Expect(codes=frozenset({"unknown_type"}), request_id="r")
    assert deserved({"type": 1}).codes == {"malformed_message"}
    assert deserved({"type": "ping", "extra": 1}).codes == {"malformed_message"}
    assert analyze(b" " * 65537) == refuse("message_too_large")
    hard = analyze(b" " * (1024 * 1024 + 1))
    assert hard.must_close and hard.closes == {1009}


def test_nesting_deeper_than_the_limit_is_refused():
    deep = {"type": "start_agent", "request_id": "d", "agent_type": "math", "message": "x",
            "options": fuzz.nested(1000, "object")}
    assert deserved(deep) == Expect(codes=frozenset({"malformed_message"}), request_id="d")
    assert deserved({**deep, "options": fuzz.nested(31, "object")}).answers == {"run_accepted"}


# -- verdicts ----------------------------------------------------------------------------------------------


def frame_of(expect: Expect, count: int = 1) -> FuzzFrame:
    return FuzzFrame("test", (b"{}",) * count, expect)


def test_a_documented_refusal_is_fine():
    verdict = classify(frame_of(MALFORMED), [{"type": "error", "code": "malformed_message"}], None, True)
    assert verdict == fuzz.Verdict("error:malformed_message")


@pytest.mark.parametrize(("answers", "close", "barrier", "problem"), [
    ([{"type": "error", "code": "oops"}], None, True, "not documented"),
    ([{"type": "error", "code": "internal_error"}], None, True, "reserved"),
    ([{"type": "error", "code": "forbidden"}], None, True, "expected error malformed_message"),
    ([{"type": "pong"}], None, True, "must be refused"),
    ([], None, True, "no answer at all"),
    ([], 1011, False, "close 1011"),
    ([], 4000, False, "close 4000 is not documented"),
    ([], 1007, False, "close 1007, expected error malformed_message"),
    ([], 1006, False, "close 1006"),
    ([], 1009, False, "close 1009, expected"),
    ([], None, False, "neither an answer"),
])
def test_violations(answers, close, barrier, problem):
    verdict = classify(frame_of(MALFORMED), answers, close, barrier)
    assert any(problem in p for p in verdict.problems), verdict


def test_the_closes_a_frame_may_get():
    assert classify(frame_of(MALFORMED), [], 3501, False).problems == ()
    hard = Expect(closes=frozenset({1009}), must_close=True)
    assert classify(frame_of(hard), [], 1009, False) == fuzz.Verdict("close:1009")
    assert any("stayed open" in p for p in classify(frame_of(hard), [{"type": "pong"}], None, True).problems)
    flood = Expect(answers=frozenset({"pong"}), codes=frozenset({"rate_limited"}), closes=frozenset({3501}),
                   must_close=True)
    answers = [{"type": "pong"}] * 60 + [{"type": "error", "code": "rate_limited"}] * 51
    assert classify(frame_of(flood, 150), answers, 3501, False).problems == ()


def test_request_ids_are_echoed_never_null_never_another():
    expect = Expect(codes=frozenset({"malformed_message"}), request_id="r1")
    assert classify(frame_of(expect), [{"type": "error", "code": "malformed_message", "request_id": "r1"}],
                    None, True).problems == ()
    for wrong, problem in ((None, "null"), ("r2", "not the frame's"), (..., "does not echo")):
        err = {"type": "error", "code": "malformed_message"}
        if wrong is not ...:
            err["request_id"] = wrong
        assert problem in classify(frame_of(expect), [err], None, True).problems[0]
    limited = {"type": "error", "code": "rate_limited"}  # echoed when it can be read, as for every error (§8)
    assert "does not echo" in classify(frame_of(expect), [limited], None, True).problems[0]


def test_answers_with_their_replays_and_resume_lists():
    sub = answer("subscribed")
    frames = [{"type": "subscribed"}, {"type": "replay_complete", "request_id": None}]
    assert classify(frame_of(sub), frames[:1] + [{"type": "replay_complete"}], None, True) == \
        fuzz.Verdict("answer:subscribed")
    resume = frame_of(answer("resumed"))
    good = {"type": "resumed", "threads": {"mine": {}}, "forbidden": ["theirs"]}
    foreign, own = frozenset({"theirs"}), frozenset({"mine"})
    assert classify(resume, [{"type": "replay_complete"}, good], None, True, foreign=foreign, own=own) == \
        fuzz.Verdict("answer:resumed")
    bad = {"type": "resumed", "threads": {"mine": {}, "theirs": {}}}
    assert classify(resume, [bad], None, True, foreign=foreign, own=own).problems


def test_tracebacks_in_a_log_are_found_with_what_ended_them():
    log = "\n".join([
        "ts=2026-12-02 07:14:58,339 level=ERROR component=worker msg=run_error run_id=894e",
        "Traceback (most recent call last):",
        '  File "engine.py", line 134, in execute',
        "    agent = self.registry.create(run.agent_type, run.options)",
        "TypeError: 'list' object is not a mapping",
        "ts=2026-12-02 07:14:59,000 level=INFO component=worker msg=run_end",
    ])
    found = fuzz.tracebacks(log + "\n" + log)
    assert found == {"TypeError: 'list' object is not a mapping (after: level=ERROR component=worker "
                     "msg=run_error run_id=…)": 2}
    assert fuzz.tracebacks("ts=1 level=INFO msg=ok\n") == {}


def test_events_and_gap_reports_answer_no_request():
    assert fuzz.is_async_frame({"type": "agent_started", "seq": 1})
    assert fuzz.is_async_frame({"type": "replay_complete", "reason": "gap"})
    assert not fuzz.is_async_frame({"type": "replay_complete", "request_id": "r"})
    assert not fuzz.is_async_frame({"type": "error", "code": "forbidden"})


def test_a_frame_for_a_report_line_is_short_and_readable():
    assert fuzz.shorten(b'{"a":1}') == '{"a":1}'
    assert fuzz.shorten(b"\x00\xff\\") == "\\x00\\xff\\\\"  # NUL, a byte that is no UTF-8, a backslash
    assert fuzz.shorten('"\u2028é"'.encode()) == '"\\u2028é"'
    assert fuzz.shorten("é".encode() * 10, 5) == "ééééé… (20 bytes)"
    long = fuzz.shorten(b"x" * 1000, 20)
    assert long.startswith("x" * 20) and long.endswith("(1000 bytes)")


# -- the canary --------------------------------------------------------------------------------------------


def canary_run(agent: str = "scripted", **changes) -> CanaryRun:
    _message, _options, result = fuzz.canary_request(agent, 4)
    types = fuzz.SCRIPTED_TYPES if agent == "scripted" else fuzz.MATH_TYPES
    events = []
    for i, etype in enumerate(types):
        data = {"tool_call_id": "call_1"} if etype.startswith("tool_") else {}
        if etype == "agent_started":
            data = {"context": {"previous_runs": 1}}
        if etype == "agent_completed":
            data = {"status": "completed", "result": result}
        events.append({"seq": 11 + i, "type": etype, "run_id": "r", "thread_id": "t", "user_id": "u", "data": data})
    run = CanaryRun(agent, 4, result, "t", "r", 10, 1, 0.0, 0.1, events, [0.2 + i / 100 for i in range(len(types))],
                    "u")
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def check(run: CanaryRun) -> list[str]:
    return check_canary_run(run, start_bound_s=2.0, end_bound_s=20.0)


def test_a_good_canary_run_has_no_problem():
    assert check(canary_run()) == [] and check(canary_run("math")) == []


def test_canary_deviations():
    run = canary_run()
    gap = [dict(e, seq=e["seq"] + (1 if i > 2 else 0)) for i, e in enumerate(run.events)]
    assert "not 11…16 in order" in check(canary_run(events=gap))[0]
    swapped = run.events[:1] + run.events[2:3] + run.events[1:2] + run.events[3:]
    assert any("in order" in p or "expected" in p for p in check(canary_run(events=swapped)))
    assert any("events" in p for p in check(canary_run(events=run.events[:-1])))
    failed = run.events[:-1] + [dict(run.events[-1], data={"status": "failed", "summary": "no"})]
    assert any("status 'failed'" in p for p in check(canary_run(events=failed)))
    assert any("after run_accepted" in p for p in check(canary_run(arrived=[3.0 + i for i in range(6)])))
    stranger = [dict(run.events[0], user_id="someone")] + run.events[1:]
    assert any("someone" in p for p in check(canary_run(events=stranger)))
    assert any("earlier runs" in p for p in check(canary_run(previous_runs=0)))
    assert check(canary_run(events=[])) == ["no event of the run arrived"]


# -- the command line --------------------------------------------------------------------------------------


def fuzz_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    env["AE_STACK_DIR"] = str(tmp_path / "no-stack")
    return subprocess.run([sys.executable, "-m", "agentevents.cli", "fuzz", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "expected"), [
    (["--url", "ws://10.1.2.3:8000/ws"], "only targets loopback addresses"),
    (["--url", "http://127.0.0.1:8000/ws"], "is not a ws:// URL"),
    (["--kinds", "bogus"], "unknown frame kinds bogus"),
    ([], "is not running (agentevents stack up"),
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, expected):
    done = fuzz_cli(tmp_path, *args)
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in done.stderr, lines
    assert not (tmp_path / "reports").exists()
