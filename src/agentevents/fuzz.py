"""The project's fuzz run: hostile frames of every kind from several connections, while a canary user's
runs must complete in order and no gateway restarts.

The first half is pure and fast to test: the documented codes and limits (docs/protocol.md §8-§10), a
seeded generator of hostile frames (``FrameGenerator``), what the documents allow as the answer to each
frame (``analyze``), the classification of what came back (``classify``) and the check of one canary
run (``check_canary_run``). The second half drives real sockets: ``Fuzzer`` sends each frame followed
by an in-order ping barrier (§5.8) so that "answered nothing" is told apart from "still processing",
reopens connections the gateway closed, runs the canary and compares the stack's process ids before
and after.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import random
import re
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, validators

from .protocol.envelope import EVENT_TYPES
from .protocol.schemas import client_schema, validate_server_frame

# -- what the documents say (docs/protocol.md); tests/unit/test_fuzz.py compares these with it ------

ERROR_CODES = frozenset({  # §8
    "malformed_message", "unknown_type", "message_too_large", "forbidden", "unknown_agent", "rate_limited",
    "invalid_token", "too_many_runs", "service_unavailable", "internal_error", "token_expired"})
CLOSE_CODES = frozenset({1000, 1001, 1002, 1006, 1007, 1008, 1009, 1011, 1012, 1013, 3000, 3001, 3002, 3500, 3501,
                         3502})  # §9
# Documented, yet no frame may cause them: each means the server broke, not that it refused.
BROKEN_CLOSES = {1011: "internal error", 1006: "abnormal close: the gateway died or the session was cut",
                 1001: "the gateway went away"}
BROKEN_ERRORS = {"internal_error": "reserved for unexpected failures"}
ANY_FRAME_CODES = frozenset({"rate_limited", "service_unavailable"})  # §5: any message may get these
BUDGET_CLOSE = 3501  # §10: the error budget ran out

MAX_MESSAGE_BYTES = 65536  # §10 client message size: error message_too_large, the connection stays open
HARD_FRAME_BYTES = 1024 * 1024  # §10 hard frame size: close 1009
INBOUND_BURST = 60  # §10 inbound rate: 20 messages/s, burst 60
ERROR_BURST = 50  # §10 error budget: 1 error/s, burst 50
MAX_DEPTH = 32  # §4, §10: arrays and objects nest at most 32 levels (the message is level 1), else malformed_message
MAX_TIME = 2**53 - 1  # §2: exp, iat and nbf are integers from 0 to 2^53 - 1

CLIENT_TYPES = ("start_agent", "subscribe", "unsubscribe", "resume", "cancel_agent", "respond", "auth_refresh",
                "ping")  # §5
ANSWERS = {"start_agent": "run_accepted", "subscribe": "subscribed", "unsubscribe": "unsubscribed",
           "resume": "resumed", "cancel_agent": "cancel_accepted", "respond": "respond_accepted",
           "auth_refresh": "auth_refreshed", "ping": "pong"}
AGENT_TYPES = ("triage", "math", "research", "data_analyst", "team", "scripted")  # §5.1
AGENT_PERMISSIONS = {"scripted": "agents:script"}  # §2: the fuzz users hold no permission
# Frames that follow an answer to the same request: replays and their reports (§5.2, §5.4).
TRAILING = {"subscribed": {"replay_complete"}, "resumed": {"replay_complete"}}

# -- expectations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the documents allow as the answer to a frame: answer types, error codes, close codes.

    A frame that must be refused has no ``answers``. ``must_close``: the connection has to be closed
    with one of ``closes`` (the hard frame size, an error budget run out by a flood).
    """

    answers: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    closes: frozenset[int] = frozenset()
    must_close: bool = False
    request_id: str | None = None  # the request_id the server can read in the frame (echoed in answers)
    check_request_id: bool = True  # False where readability depends on the parser (lone surrogates)

    def __or__(self, other: Expect) -> Expect:
        return Expect(self.answers | other.answers, self.codes | other.codes, self.closes | other.closes,
                      self.must_close and other.must_close, self.request_id or other.request_id,
                      self.check_request_id and other.check_request_id)

    def unchecked_request_id(self) -> Expect:
        return Expect(self.answers, self.codes, self.closes, self.must_close, None, False)

    def describe(self) -> str:
        parts = sorted(self.answers) + [f"error {c}" for c in sorted(self.codes)]
        parts += [f"close {c}" for c in sorted(self.closes)]
        return " or ".join(parts) + (" (and the close)" if self.must_close and not self.closes else "")


def answer(*types: str) -> Expect:
    return Expect(answers=frozenset(types))


def refuse(*codes: str) -> Expect:
    return Expect(codes=frozenset(codes))


MALFORMED = refuse("malformed_message")

# -- JSON with literals ------------------------------------------------------------------------------


class Raw(str):
    """JSON text put into a frame as it is: ``1e0``, ``-0.0``, ``2^64``, a nesting 20 000 levels deep."""


def dumps(obj: Any, *, ascii_only: bool = False) -> str:
    """Serialize like ``json.dumps`` (compact), with ``Raw`` values and keys inserted verbatim."""
    if isinstance(obj, Raw):
        return str(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(dumps(k if isinstance(k, Raw) else str(k), ascii_only=ascii_only) + ":"
                              + dumps(v, ascii_only=ascii_only) for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(dumps(v, ascii_only=ascii_only) for v in obj) + "]"
    return json.dumps(obj, ensure_ascii=ascii_only)


def nested(depth: int, shape: str, inner: str = "1") -> Raw:
    """``depth`` levels of arrays, objects or both, built without recursion."""
    if shape == "array":
        return Raw("[" * depth + inner + "]" * depth)
    if shape == "object":
        return Raw('{"a":' * depth + inner + "}" * depth)
    opening = "".join('[' if i % 2 else '{"a":' for i in range(depth))
    closing = "".join(']' if i % 2 else '}' for i in reversed(range(depth)))
    return Raw(opening + inner + closing)


def json_depth(obj: Any) -> int:
    """How deep arrays and objects nest (the object itself is level 1), without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return deepest


# -- ids the frames point at ---------------------------------------------------------------------------

# Placeholders in a generated frame, filled with real ids when it is sent: the fuzz user's own threads and
# runs, and the canary's (another user's). Everything else is an id nobody has.
MARKER = re.compile(rb"%%(OT|OR|VT|VR)(\d)%%")
ROLES = {"OT": "own_thread", "OR": "own_run", "VT": "victim_thread", "VR": "victim_run"}
# Stand-ins of the same shape as real ids (32 hex digits) for working out what a frame deserves.
SAMPLE_PREFIX = {"OT": "a0", "OR": "a1", "VT": "b0", "VR": "b1"}
SAMPLE_ROLE = {prefix: ROLES[m] for m, prefix in SAMPLE_PREFIX.items()}


def marker(role: str, index: int) -> str:
    return f"%%{role}{index % 10}%%"


def with_samples(payload: bytes) -> bytes:
    return MARKER.sub(lambda m: (SAMPLE_PREFIX[m[1].decode()] + m[2].decode().rjust(30, "0")).encode(), payload)


def role_of(value: Any) -> str:
    """own_thread, own_run, victim_thread, victim_run for a stand-in id; ``nobody`` for anything else."""
    if isinstance(value, str) and len(value) == 32 and value[:2] in SAMPLE_ROLE and value[2:].isdigit():
        return SAMPLE_ROLE[value[:2]]
    return "nobody"


def resolve(payload: bytes, ids: dict[str, list[str]]) -> bytes:
    """Fill the placeholders with real ids (``ids``: role -> known ids, the index picks one)."""
    def fill(m: re.Match[bytes]) -> bytes:
        known = ids.get(ROLES[m[1].decode()]) or ["ff" + "0" * 30]
        return known[int(m[2]) % len(known)].encode()
    return MARKER.sub(fill, payload)


# -- what a frame deserves -----------------------------------------------------------------------------


def _strict_integer(_checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_Strict = validators.extend(Draft202012Validator,
                            type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))


@cache
def _validators(message_type: str) -> tuple[Draft202012Validator, Draft202012Validator]:
    """The published schema of a client message, read as JSON Schema does (1.0 is an integer) and strictly."""
    schema = client_schema(message_type)
    return Draft202012Validator(schema), _Strict(schema)


def readable_request_id(obj: Any) -> str | None:
    if isinstance(obj, dict):
        rid = obj.get("request_id")
        if isinstance(rid, str) and 0 < len(rid) <= 128:
            return rid
    return None


def semantic(msg: dict[str, Any], tokens: dict[str, Expect]) -> Expect:
    """The answer a schema-valid message deserves, by whose threads and runs it names (§5)."""
    mtype = msg["type"]
    if mtype in ("ping", "unsubscribe", "resume"):
        return answer(ANSWERS[mtype])
    if mtype == "subscribe":
        return answer("subscribed") if role_of(msg["thread_id"]) == "own_thread" else refuse("forbidden")
    if mtype in ("cancel_agent", "respond"):
        return answer(ANSWERS[mtype]) if role_of(msg["run_id"]) == "own_run" else refuse("forbidden")
    if mtype == "auth_refresh":
        return tokens.get(msg["token"], refuse("invalid_token"))
    codes = set()
    if msg["agent_type"] not in AGENT_TYPES:
        codes.add("unknown_agent")
    elif msg["agent_type"] in AGENT_PERMISSIONS:
        codes.add("forbidden")
    if "thread_id" in msg and role_of(msg["thread_id"]) != "own_thread":
        codes.add("forbidden")
    if codes:  # the documents give no order between the checks: any of the applicable refusals
        return refuse(*codes, "too_many_runs")
    return Expect(answers=frozenset({"run_accepted"}), codes=frozenset({"too_many_runs"}))


def analyze(payload: bytes, tokens: dict[str, Expect] | None = None) -> Expect:
    """What the documents allow as the answer to one frame (text or binary: both are parsed as JSON)."""
    size = len(payload)
    if size > HARD_FRAME_BYTES:
        return Expect(closes=frozenset({1009}), must_close=True)
    if size > MAX_MESSAGE_BYTES:
        return refuse("message_too_large")
    try:
        obj = orjson.loads(with_samples(payload))
    except orjson.JSONDecodeError:
        return MALFORMED
    rid = readable_request_id(obj)
    if json_depth(obj) > MAX_DEPTH:
        return Expect(codes=MALFORMED.codes, request_id=rid)

    def done(expect: Expect) -> Expect:
        return Expect(expect.answers, expect.codes, expect.closes, expect.must_close, rid)

    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return done(MALFORMED)
    if obj["type"] not in CLIENT_TYPES:
        return done(refuse("unknown_type"))
    lenient, strict = _validators(obj["type"])
    try:
        if not lenient.is_valid(obj):
            return done(MALFORMED)
        exact = strict.is_valid(obj)
    except RecursionError:  # cannot happen below the depth limit
        return done(MALFORMED)
    expect = semantic(obj, tokens or {})
    # 1.0, 1e0 and -0.0 are integers to JSON Schema, not to every server: either reading is fine.
    return done(expect if exact else expect | MALFORMED)


# -- frames --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzFrame:
    kind: str
    payloads: tuple[bytes, ...]  # one frame; a flood sends several back to back
    expect: Expect
    binary: bool = False
    note: str = ""
    wire: bool = False  # the payload is WebSocket framing itself, written under the client library

    @property
    def count(self) -> int:
        return len(self.payloads)

    def describe(self, limit: int = 160) -> str:
        how = " (binary)" if self.binary else " (raw WebSocket bytes)" if self.wire else ""
        return f"{self.kind}{how} {self.note}: {shorten(self.payloads[0], limit)}" \
            + (f" … and {self.count - 1} more frames" if self.count > 1 else "")


def shorten(payload: bytes, limit: int = 160) -> str:
    """A frame for a report line: its start, readable (bytes that are no UTF-8 as \\xNN, control and
    invisible characters escaped), with its size when cut."""
    out: list[str] = []
    for ch in payload[: limit * 4].decode("utf-8", errors="surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        if len(out) > limit:
            break
    text = "".join(out)
    if len(out) <= limit and len(payload) <= limit * 4:
        return text
    return f"{''.join(out[:limit])}… ({len(payload)} bytes)"


@dataclass
class TokenKit:
    """Signs the tokens of ``auth_refresh`` frames for the stack's secret (HS256, the reference defaults)."""

    secret: str
    user: str
    other_user: str
    issuer: str = "agentevents"
    audience: str = "agentevents-ws"

    def claims(self, now: float, rng: random.Random, **changes: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"sub": self.user, "iat": int(now), "exp": int(now) + 7200,
                                   "jti": rng.getrandbits(128).to_bytes(16, "big").hex(), "iss": self.issuer,
                                   "aud": self.audience, "permissions": [], "tier": "free"}
        for key, value in changes.items():
            if value is DROP:
                payload.pop(key, None)
            else:
                payload[key] = value
        return payload

    def sign(self, payload: dict[str, Any], *, key: str | None = None, algorithm: str = "HS256") -> str:
        """A JWS in compact form, whatever the claims hold (a JWT library refuses to write most of these)."""
        def part(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        signing_input = part(dumps({"alg": algorithm, "typ": "JWT"}).encode()) + "." + part(dumps(payload).encode())
        if algorithm == "none":
            return signing_input + "."
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
        mac = hmac.new((key or self.secret).encode(), signing_input.encode(), digest).digest()
        return signing_input + "." + part(mac)


DROP = object()
INVALID, REFRESHED = refuse("invalid_token"), answer("auth_refreshed")
EITHER_TOKEN = REFRESHED | INVALID  # what the documents leave open (a claim nested 1 000 levels deep)
CONTROL_CHARS = "\x00\x01\x07\x08\t\n\r\x1b\x1f\x7f\x85\u2028\u2029\ufeff\u200b\uffff"
NUMBER_LITERALS = ("0", "-0", "1", "1.0", "1e0", "1E0", "-0.0", "0.0", "-1", "1.5", "1e308", "9223372036854775807",
                   "9223372036854775808", "18446744073709551615", "18446744073709551616",
                   "100000000000000000000000000000", "-9223372036854775808", '"1"', "true", "false", "null", "[]",
                   "{}", "NaN", "Infinity", "-Infinity", "0x10", "01", "1.", ".5", "+1")
WRONG_VALUES = (0, -1, 1.5, True, False, None, [], {}, "", "x", [1], {"a": 1}, [None], 2**64)
AGENT_CHOICES = ("math",) * 12 + ("triage",) * 3 + ("research", "data_analyst", "team") + ("scripted",) * 2 + \
    ("nope", "MATH", "math ", "", "__init__", "registry", "../math")


class FrameGenerator:
    """Hostile frames, seeded: the same seed and stream give the same frames (the users and times inside
    tokens aside), and each comes with what the documents allow as its answer."""

    KINDS = {  # kind: weight
        "random_text": 5, "random_binary": 4, "invalid_utf8_text": 3, "invalid_utf8_binary": 3, "invalid_json": 6,
        "json_non_object": 4, "unknown_type": 5, "missing_field": 7, "wrong_type": 8, "extra_field": 4,
        "number_edge": 8, "huge_string": 5, "size_limit": 2, "deep_nesting": 6, "control_chars": 9,
        "auth_refresh_token": 9, "foreign_target": 9, "valid": 4, "flood_errors": 0.06, "flood_rate": 0.06,
        "framing": 3,
    }
    TRANSPORT_FIXED = ("random_text", "random_binary", "invalid_utf8_text", "invalid_utf8_binary", "framing")

    def __init__(self, seed: int | str, stream: int = 0, *, kit: TokenKit,
                 clock: Callable[[], float] = time.time, kinds: Iterable[str] | None = None) -> None:
        self.rng = random.Random(f"{seed}:{stream}")
        self.stream = stream
        self.kit = kit
        self.clock = clock
        self.counter = 0
        chosen = list(kinds) if kinds is not None else list(self.KINDS)
        unknown = [k for k in chosen if k not in self.KINDS]
        if unknown:
            raise ValueError(f"unknown frame kinds: {', '.join(unknown)}")
        self.kinds = chosen
        self.weights = [self.KINDS[k] for k in chosen]
        self.tokens: dict[str, Expect] = {}  # the tokens made here, with what their refresh deserves

    def next(self) -> FuzzFrame:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        return self.make(kind)

    def make(self, kind: str) -> FuzzFrame:
        self.counter += 1
        frame = getattr(self, "_" + kind)()
        if frame.count == 1 and kind not in self.TRANSPORT_FIXED and self.rng.random() < 0.12:
            frame = FuzzFrame(frame.kind, frame.payloads, frame.expect, True, frame.note)  # parsed alike (§1)
        if not (frame.binary or frame.wire or frame.expect.must_close):
            try:
                for payload in frame.payloads:
                    payload.decode("utf-8")
            except UnicodeDecodeError:  # a text frame that is not UTF-8, whatever made it: close 1007 (§9)
                frame = FuzzFrame(frame.kind, frame.payloads, Expect(closes=frozenset({1007}), must_close=True),
                                  False, frame.note)
        return frame

    # -- building blocks ------------------------------------------------------------------------------
    def rid(self) -> str:
        r = self.rng.random()
        if r < 0.8:
            return f"fz{self.stream}-{self.counter}"
        return self.rng.choice(["é-ü-😀", "a b", "x" * 128, "0", "\"quoted\"", "<script>", "fz-barrier-x"])

    def nobody(self) -> str:
        return self.rng.choice(["ff" + self.rng.getrandbits(120).to_bytes(15, "big").hex(), "not-mine-123",
                                "thread:1", "..", "-", "a" * 64, "0" * 32, "A.B_C:D-E"])

    def thread(self, roles: tuple[str, ...] = ("own", "victim", "nobody")) -> str:
        role = self.rng.choice(roles)
        return {"own": marker("OT", self.rng.randrange(10)), "victim": marker("VT", self.rng.randrange(10))} \
            .get(role) or self.nobody()

    def run(self, roles: tuple[str, ...] = ("own", "victim", "nobody")) -> str:
        role = self.rng.choice(roles)
        return {"own": marker("OR", self.rng.randrange(10)), "victim": marker("VR", self.rng.randrange(10))} \
            .get(role) or self.nobody()

    def token(self) -> str:
        """A token, good or bad, remembered with what its ``auth_refresh`` deserves."""
        now, rng, kit = self.clock(), self.rng, self.kit
        case = rng.choice(["valid_later", "other_user", "earlier", "expired", "bad_signature", "alg_none",
                           "alg_hs512", "tampered", "garbage", "exp", "exp", "exp", "iat", "nbf", "missing_claim",
                           "wrong_iss", "wrong_aud", "sub", "permissions", "tier", "deep_claim"])
        expect = INVALID
        if case == "valid_later":
            token, expect = kit.sign(kit.claims(now, rng)), REFRESHED
        elif case == "other_user":
            token, expect = kit.sign(kit.claims(now, rng, sub=kit.other_user)), refuse("forbidden")
        elif case == "earlier":
            token, expect = kit.sign(kit.claims(now, rng, exp=int(now) + 120)), refuse("forbidden")
        elif case == "expired":
            token = kit.sign(kit.claims(now, rng, exp=int(now) - rng.choice([1, 60, 86400 * 400])))
        elif case == "bad_signature":
            token = kit.sign(kit.claims(now, rng), key=kit.secret + "x")
        elif case == "alg_none":
            token = kit.sign(kit.claims(now, rng), algorithm="none")
        elif case == "alg_hs512":
            token = kit.sign(kit.claims(now, rng), algorithm="HS512")
        elif case == "tampered":
            head, _, rest = kit.sign(kit.claims(now, rng)).partition(".")
            body, _, sig = rest.partition(".")
            other = kit.sign(kit.claims(now, rng, sub=kit.other_user)).split(".")[1]
            token = ".".join([head, other if rng.random() < 0.5 else body[:-2] + "AA", sig])
        elif case == "garbage":
            token = rng.choice(["a.b.c", "...", "Bearer x", "eyJ", "null", "x" * rng.randrange(1, 2000),
                                "eyJhbGciOiJub25lIn0.e30.", self.text(40) or "x"])
        elif case == "exp":  # §2: an integer from 0 to 2^53 - 1, else refused
            value = rng.choice([2**64, 2**64 + 1, 2**70, 10**30, 1e30, 2**63, 2**53, MAX_TIME, MAX_TIME, "9999999999",
                                True, None, -1, 0, [1], now + 7200.5, float(int(now) + 7200)])
            good = isinstance(value, int) and not isinstance(value, bool) and now < value <= MAX_TIME
            token = kit.sign(kit.claims(now, rng, exp=value))
            expect = REFRESHED if good else INVALID
        elif case == "iat":
            token = kit.sign(kit.claims(now, rng, iat=rng.choice([int(now) + 3600, 2**64, 2**53, "0", None, 1e30,
                                                                  float(int(now)), -1])))
        elif case == "nbf":
            value = rng.choice([int(now) + 3600, 2**64, 2**53, "x", -1, 1.5, int(now) - 10])
            token = kit.sign(kit.claims(now, rng, nbf=value))
            expect = REFRESHED if value == int(now) - 10 else INVALID
        elif case == "missing_claim":
            token = kit.sign(kit.claims(now, rng, **{rng.choice(["sub", "exp", "iat", "jti", "iss", "aud"]): DROP}))
        elif case == "wrong_iss":
            token = kit.sign(kit.claims(now, rng, iss=rng.choice(["", "evil", kit.issuer + "\x00", None])))
        elif case == "wrong_aud":
            token = kit.sign(kit.claims(now, rng, aud=rng.choice(["", "evil", ["x"], None])))
        elif case == "sub":
            value = rng.choice(["", "x" * 129, 123, None, ["a"], kit.user + "\x00", kit.user.upper()])
            token = kit.sign(kit.claims(now, rng, sub=value))
            expect = INVALID | refuse("forbidden") if isinstance(value, str) and 0 < len(value) <= 128 else INVALID
        elif case == "permissions":
            token = kit.sign(kit.claims(now, rng, permissions=rng.choice(["*", {"a": 1}, [1], None, "agents:script"])))
        elif case == "tier":
            token = kit.sign(kit.claims(now, rng, tier=rng.choice(["gold", "", None, 1, "FREE"])))
        else:  # an extra claim nested 1 000 levels: other claims are ignored (§2), a depth limit may refuse it
            token = kit.sign({**kit.claims(now, rng), "x": nested(1000, rng.choice(["array", "object"]))})
            expect = EITHER_TOKEN
        self.tokens[token] = expect
        return token

    def text(self, n: int) -> str:
        alphabet = self.rng.choice(["abcXYZ 019", '{}[]":,\\ntrue', "\x00\x01\n\t\x7f", "éü€😀\u2028\ufeff",
                                    "".join(chr(c) for c in range(0x20, 0x7f))])
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def base(self, mtype: str | None = None) -> dict[str, Any]:
        """A message of the type, pointed at the fuzz user's own threads and runs (mutated afterwards)."""
        mtype = mtype or self.rng.choice(CLIENT_TYPES)
        rng = self.rng
        msg: dict[str, Any] = {"type": mtype, "request_id": self.rid()}
        if rng.random() < 0.1:
            del msg["request_id"]
        if mtype == "start_agent":
            msg.update(agent_type=rng.choice(AGENT_CHOICES), message=rng.choice(
                ["What is 2+3?", "What is 12*(3+4)?", "hello", "", "9**9**9**9", "(" * 500 + "1" + ")" * 500]))
            if rng.random() < 0.1:
                msg["thread_id"] = self.thread(("own",))
            if rng.random() < 0.2:  # known options, of the right type and of wrong ones (§5.1)
                msg["options"] = rng.choice([{}, {"timeout_s": 5}, {"preferences": {"a": 1}}, {"steps": []},
                                             {"timeout_s": "soon"}, {"preferences": [1]}, {"expression": 5},
                                             {"files": "x"}, {"query": []}, {"unknown_option": 1}])
        elif mtype == "subscribe":
            msg["thread_id"] = self.thread(("own",))
            if rng.random() < 0.6:
                msg["since_seq"] = rng.choice([0, 1, 5, 2**63 - 1])
        elif mtype == "unsubscribe":
            msg["thread_id"] = self.thread()
        elif mtype == "resume":
            msg["threads"] = {self.thread(("own",)): rng.choice([0, 3]) for _ in range(rng.randrange(1, 3))}
        elif mtype in ("cancel_agent", "respond"):
            msg["run_id"] = self.run(("own",))
            if mtype == "respond":
                msg.update(approval_id=rng.choice(["appr_1", "appr_" + "f" * 12]), approved=rng.random() < 0.5)
                if rng.random() < 0.5:
                    msg["comment"] = "fuzz"
        elif mtype == "auth_refresh":
            msg["token"] = self.token()
        elif rng.random() < 0.5:
            msg["in_order"] = rng.random() < 0.5
        return msg

    def frame(self, kind: str, obj: Any, note: str = "", *, also: Expect | None = None) -> FuzzFrame:
        payload = dumps(obj, ascii_only=self.rng.random() < 0.3).encode()
        expect = analyze(payload, self.tokens)
        return FuzzFrame(kind, (payload,), expect | also if also else expect, False, note)

    def raw(self, kind: str, payload: bytes, note: str = "", *, binary: bool = False,
            expect: Expect | None = None) -> FuzzFrame:
        return FuzzFrame(kind, (payload,), expect or analyze(payload, self.tokens), binary, note)

    def string_fields(self, msg: dict[str, Any]) -> list[str]:
        return [k for k, v in msg.items() if isinstance(v, str)]

    # -- the kinds -------------------------------------------------------------------------------------
    def _random_text(self) -> FuzzFrame:
        text = self.text(self.rng.randrange(0, 300))
        return self.raw("random_text", text.encode(), f"{len(text)} characters")

    def _random_binary(self) -> FuzzFrame:
        data = self.rng.randbytes(self.rng.randrange(0, 400))
        return self.raw("random_binary", data, f"{len(data)} bytes", binary=True)

    def _invalid_utf8(self, kind: str, binary: bool) -> FuzzFrame:
        bad = self.rng.choice([b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\x80",
                               b"\xf4\x90\x80\x80", b"\xc3", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"])
        msg = self.base()
        text = dumps(msg).encode()
        where = self.rng.choice(["string", "start", "end", "only"])
        if where == "string" and b'":"' in text:
            at = text.index(b'":"') + 3
            payload = text[:at] + bad + text[at:]
        elif where == "start":
            payload = bad + text
        elif where == "end":
            payload = text + bad
        else:
            payload = bad * self.rng.randrange(1, 20)
        # A text frame that is not UTF-8 is closed with 1007; a binary one is parsed as JSON (§1, §9).
        expect = MALFORMED if binary else Expect(closes=frozenset({1007}), must_close=True)
        return self.raw(kind, payload, f"{bad!r} at {where}", binary=binary, expect=expect)

    def _invalid_utf8_text(self) -> FuzzFrame:
        return self._invalid_utf8("invalid_utf8_text", False)

    def _invalid_utf8_binary(self) -> FuzzFrame:
        return self._invalid_utf8("invalid_utf8_binary", True)

    def _invalid_json(self) -> FuzzFrame:
        rng = self.rng
        good = dumps(self.base())
        case = rng.choice(["truncated", "trailing_comma", "single_quotes", "comment", "nan", "raw_control",
                           "two_objects", "bom", "flipped", "unquoted_key", "empty", "whitespace"])
        text = {
            "truncated": good[: rng.randrange(0, max(1, len(good) - 1))],
            "trailing_comma": good[:-1] + ",}",
            "single_quotes": good.replace('"', "'"),
            "comment": "/* c */" + good,
            "nan": good[:-1] + ',"x":NaN}',
            "raw_control": good.replace('"type"', '"ty' + rng.choice(["\x00", "\n", "\t", "\x1f"]) + 'pe"', 1),
            "two_objects": good + good,
            "bom": "\ufeff" + good,
            "unquoted_key": good.replace('"type"', "type", 1),
            "empty": "",
            "whitespace": " \n\t ",
        }.get(case)
        if text is None:  # a flipped byte somewhere
            data = bytearray(good.encode())
            data[rng.randrange(len(data))] = rng.choice(b'{}[]":,\\x')
            return self.raw("invalid_json", bytes(data), case)
        return self.raw("invalid_json", text.encode(), case)

    def _json_non_object(self) -> FuzzFrame:
        value = self.rng.choice([[], [self.base()], 1, -0.0, "ping", None, True, False, Raw("1e400"), [[[]]],
                                 Raw('"' + "x" * 1000 + '"'), Raw("18446744073709551616")])
        return self.frame("json_non_object", value, type(value).__name__)

    def _unknown_type(self) -> FuzzFrame:
        value = self.rng.choice(["", "PING", "ping ", " ping", "Ping", "start-agent", "startAgent", "pong", "error",
                                 "run_accepted", "connection_established", "__proto__", "constructor", "on_ping",
                                 "__class__", "x" * 5000, "ping\x00", "😀", 1, None, True, [], {}, ["ping"], 1.5])
        msg = self.base("ping")
        msg["type"] = value
        return self.frame("unknown_type", msg, repr(value)[:40])

    def _missing_field(self) -> FuzzFrame:
        msg = self.base()
        gone = self.rng.choice(list(msg))
        del msg[gone]
        return self.frame("missing_field", msg, f"{msg.get('type', '?')} without {gone}")

    def _wrong_type(self) -> FuzzFrame:
        msg = self.base()
        key = self.rng.choice([k for k in msg if k != "type"] or ["type"])
        value = self.rng.choice(WRONG_VALUES)
        if key == "threads" and self.rng.random() < 0.5:  # a wrong value inside: the seq of a thread
            value = {self.thread(("own",)): self.rng.choice(WRONG_VALUES)}
        msg[key] = value
        return self.frame("wrong_type", msg, f"{msg['type']}.{key} = {repr(value)[:30]}")

    def _extra_field(self) -> FuzzFrame:
        msg = self.base()
        name = self.rng.choice(["extra", "__proto__", "Type", "TYPE", "request_id ", "", "\x00", "é", "seq",
                                "user_id", "x" * 300])
        msg[name] = self.rng.choice([1, "x", None, {}, []])
        return self.frame("extra_field", msg, f"{msg['type']} + {name[:20]!r}")

    def _number_edge(self) -> FuzzFrame:
        literal = Raw(self.rng.choice(NUMBER_LITERALS))
        where = self.rng.choice(["since_seq", "since_seq", "resume", "in_order", "timeout_s", "approved"])
        if where == "since_seq":
            msg = self.base("subscribe")
            msg["thread_id"] = self.thread(("own", "own", "victim", "nobody"))
            msg["since_seq"] = literal
        elif where == "resume":
            msg = self.base("resume")
            msg["threads"] = {self.thread(("own", "own", "victim", "nobody")): literal}
        elif where == "in_order":
            msg = self.base("ping")
            msg["in_order"] = literal
        elif where == "timeout_s":
            msg = self.base("start_agent")
            msg.update(agent_type="math", options={"timeout_s": literal})
        else:
            msg = self.base("respond")
            msg["approved"] = literal
        return self.frame("number_edge", msg, f"{where} = {literal}")

    LIMITS = {"request_id": 128, "thread_id": 64, "run_id": 64, "approval_id": 64, "agent_type": 64,
              "message": 32768, "token": 8192, "comment": 4096, "type": 64}

    def _huge_string(self) -> FuzzFrame:
        msg = self.base(self.rng.choice(["start_agent", "start_agent", "subscribe", "respond", "auth_refresh",
                                         "cancel_agent", "ping", "resume"]))
        key = self.rng.choice(self.string_fields(msg) + (["threads"] if "threads" in msg else []))
        limit = self.LIMITS.get(key, 64)
        n = self.rng.choice([limit, limit + 1, limit * 2, 40000, 70000, 300000])
        char = self.rng.choice(["a", "a", "é", "€", "😀", "\x00"])
        value = char * n
        if key == "threads":
            msg["threads"] = {value: 0}
        else:
            msg[key] = value
        return self.frame("huge_string", msg, f"{msg['type']}.{key}: {n} x {char!r}")

    def _size_limit(self) -> FuzzFrame:
        """Frames just under and just over the documented limits (bytes, not characters)."""
        target = self.rng.choice([MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES - 1,
                                  HARD_FRAME_BYTES, HARD_FRAME_BYTES + 1])
        shape = self.rng.choice(["padded_ping", "options_pad", "multibyte_pad"])
        if shape == "padded_ping":  # a valid ping with whitespace after it
            head = dumps({"type": "ping", "request_id": self.rid()}).encode()
            payload = head + b" " * (target - len(head))
        else:
            char = "€" if shape == "multibyte_pad" else "x"
            msg = {"type": "start_agent", "request_id": self.rid(), "agent_type": "math", "message": "What is 1+1?",
                   "options": {"pad": ""}}
            head = dumps(msg).encode()
            room = target - len(head)
            pad = char * (room // len(char.encode())) + "x" * (room % len(char.encode()))
            msg["options"]["pad"] = pad
            payload = dumps(msg).encode()
        assert len(payload) == target
        return self.raw("size_limit", payload, f"{shape} of {target} bytes")

    def _deep_nesting(self) -> FuzzFrame:
        """Nesting around the documented limit (32 levels, §4) and far past it: 1 000 levels in options and
        in the other fields, past the JSON parser's own limit, and 20 000 levels in a frame under 64 KiB."""
        rng = self.rng
        depth = rng.choice([MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, 1000, 1000, 1000, 1025, 20000])
        shape = rng.choice(["array", "object", "mixed"])
        where = rng.choice(["options", "options", "options_value", "thread_id", "request_id", "since_seq", "threads",
                            "token", "comment", "approved", "in_order", "type", "extra", "frame"])
        deep = nested(depth, shape)
        if where == "frame":
            obj: Any = deep
        else:
            mtype = {"options": "start_agent", "options_value": "start_agent", "thread_id": "subscribe",
                     "since_seq": "subscribe", "threads": "resume", "token": "auth_refresh", "comment": "respond",
                     "approved": "respond", "in_order": "ping"}.get(where) or rng.choice(CLIENT_TYPES)
            obj = self.base(mtype)
            if mtype == "start_agent":
                obj["agent_type"] = "math"
            if where == "options":
                obj["options"] = nested(depth, "object")
            elif where == "options_value":
                obj["options"] = {"preferences": deep}
            elif where == "threads":
                obj["threads"] = {self.thread(("own",)): deep}
            else:
                obj[where] = deep
        return self.raw("deep_nesting", dumps(obj).encode(), f"{depth} levels of {shape} in {where}")

    def _control_chars(self) -> FuzzFrame:
        rng = self.rng
        msg = self.base()
        fields = self.string_fields(msg) + (["threads"] if "threads" in msg else [])
        key = rng.choice(fields)
        chars = "".join(rng.choice(CONTROL_CHARS) for _ in range(rng.randrange(1, 4)))
        mode = rng.choice(["escaped", "escaped", "escaped", "raw", "lone_surrogate"])
        original = msg[key]
        if key == "threads":
            first = next(iter(original))
            at = rng.randrange(len(first) + 1)
            msg["threads"] = {first[:at] + chars + first[at:]: 0}
        else:
            at = rng.randrange(len(original) + 1)
            msg[key] = original[:at] + chars + original[at:]
        also = self.tokens.get(original) if key == "token" else None  # a reader may skip what is not base64url
        if mode == "escaped":
            return self.frame("control_chars", msg, f"{msg['type']}.{key} + {chars!r}", also=also)
        text = dumps(msg)
        if mode == "raw":  # unescaped control characters inside a JSON string: not JSON
            marked = text.replace(json.dumps(chars, ensure_ascii=False)[1:-1], "\x00\n", 1)
            return self.raw("control_chars", marked.encode(), f"{msg['type']}.{key} + raw NUL and newline")
        escaped = json.dumps(chars, ensure_ascii=False)[1:-1]
        payload = text.replace(escaped, "\\ud800" + escaped, 1).encode() if escaped in text else text.encode()
        # A lone surrogate escape is JSON grammar but no text: refused, or read as some character.
        expect = (analyze(text.encode(), self.tokens) | MALFORMED).unchecked_request_id()
        return FuzzFrame("control_chars", (payload,), expect | also if also else expect, False,
                         f"{msg['type']}.{key} + lone surrogate")

    def _framing(self) -> FuzzFrame:
        """WebSocket frames that break RFC 6455 (close 1002, §9), and messages split into fragments, which
        count together (a message over 1 MiB: 1009; over 64 KiB: message_too_large; else answered)."""
        rng = self.rng
        mask = rng.randbytes(4)
        ping = dumps({"type": "ping", "request_id": self.rid()}).encode()
        broken = Expect(closes=frozenset({1002}), must_close=True)
        case = rng.choice(["unmasked", "rsv2", "rsv3", "opcode", "continuation", "fragmented_ping", "long_ping",
                           "close_short", "close_code", "close_reason_utf8", "text_in_text", "fragments",
                           "fragments_large", "fragments_huge"])
        if case == "unmasked":
            wire, expect = ws_frame(0x1, ping, mask=None), broken
        elif case in ("rsv2", "rsv3"):
            wire, expect = ws_frame(0x1, ping, rsv=0b010 if case == "rsv2" else 0b001, mask=mask), broken
        elif case == "opcode":
            wire, expect = ws_frame(rng.choice([0x3, 0x7, 0xB, 0xF]), ping, mask=mask), broken
        elif case == "continuation":
            wire, expect = ws_frame(0x0, ping, mask=mask), broken
        elif case == "fragmented_ping":
            wire, expect = ws_frame(0x9, b"x", fin=False, mask=mask), broken
        elif case == "long_ping":
            wire, expect = ws_frame(0x9, b"x" * 126, mask=mask), broken
        elif case == "close_short":
            wire, expect = ws_frame(0x8, b"\x03", mask=mask), broken
        elif case == "close_code":
            code = rng.choice([0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000, 65535])
            wire, expect = ws_frame(0x8, code.to_bytes(2, "big") + b"bye", mask=mask), broken
            case = f"close frame with code {code}"
        elif case == "close_reason_utf8":
            # Invalid UTF-8, like a text frame's: 1007 (RFC 6455 §8.1; docs/protocol.md §9).
            wire = ws_frame(0x8, (1000).to_bytes(2, "big") + b"\xff\xfe", mask=mask)
            expect = Expect(closes=frozenset({1007}), must_close=True)
            case = "close frame 1000 whose reason is not UTF-8 (b'\\xff\\xfe')"
        elif case == "text_in_text":
            wire = ws_frame(0x1, ping[:5], fin=False, mask=mask) + ws_frame(0x1, ping[5:], mask=mask)
            expect = broken
        else:
            size = {"fragments": len(ping), "fragments_large": MAX_MESSAGE_BYTES + 1,
                    "fragments_huge": HARD_FRAME_BYTES + 1}[case]
            message = ping + b" " * (size - len(ping))
            cut = sorted(rng.sample(range(1, len(message)), k=min(3, len(message) - 1)))
            pieces = [message[a:b] for a, b in zip([0, *cut], [*cut, len(message)], strict=True)]
            wire = b"".join(ws_frame(0x1 if i == 0 else 0x0, piece, fin=i == len(pieces) - 1, mask=mask)
                            for i, piece in enumerate(pieces))
            expect = analyze(message, self.tokens)
        return FuzzFrame("framing", (wire,), expect, False, case, wire=True)

    def _auth_refresh_token(self) -> FuzzFrame:
        msg = self.base("auth_refresh")
        return self.frame("auth_refresh_token", msg, f"token {shorten(msg['token'].encode(), 40)}")

    def _foreign_target(self) -> FuzzFrame:
        rng = self.rng
        mtype = rng.choice(["subscribe", "subscribe", "resume", "cancel_agent", "cancel_agent", "respond",
                            "start_agent", "unsubscribe"])
        msg = self.base(mtype)
        roles = ("victim", "victim", "nobody")
        if mtype in ("subscribe", "unsubscribe"):
            msg["thread_id"] = self.thread(roles)
        elif mtype == "resume":
            msg["threads"] = {self.thread(roles): rng.choice([0, 1, 2**63 - 1])
                              for _ in range(rng.randrange(1, 4))}
            if rng.random() < 0.3:
                msg["threads"][self.thread(("own",))] = 0
        elif mtype in ("cancel_agent", "respond"):
            msg["run_id"] = self.run(roles)
        else:
            msg.update(agent_type="math", thread_id=self.thread(roles))
        target = msg.get("thread_id") or msg.get("run_id") or ",".join(msg.get("threads", {}))
        return self.frame("foreign_target", msg, f"{mtype} on {target[:40]}")

    def _valid(self) -> FuzzFrame:
        msg = self.base()
        if msg["type"] == "start_agent":
            msg.update(agent_type="math", message="What is 6*7?")
            msg.pop("options", None)
        if msg["type"] == "auth_refresh":
            msg["token"] = self.kit.sign(self.kit.claims(self.clock(), self.rng))
            self.tokens[msg["token"]] = REFRESHED
        return self.frame("valid", msg, msg["type"])

    def _flood_errors(self) -> FuzzFrame:
        """More refused frames than the error budget's burst, back to back: the connection must close 3501."""
        n = self.rng.randrange(ERROR_BURST + 15, ERROR_BURST * 2 + 20)
        junk = [b"{", b"[]", b'{"type":"nope"}', b'{"type":"subscribe"}', b"\x00", b'{"type":1}']
        payloads = tuple(self.rng.choice(junk) for _ in range(n))
        expect = Expect(codes=frozenset({"malformed_message", "unknown_type"}), closes=frozenset({BUDGET_CLOSE}),
                        must_close=True)
        return FuzzFrame("flood_errors", payloads, expect, False, f"{n} refused frames")

    def _flood_rate(self) -> FuzzFrame:
        """Pings far over the inbound rate: rate_limited errors, then the error budget closes 3501."""
        n = self.rng.randrange(INBOUND_BURST + ERROR_BURST + 40, INBOUND_BURST + ERROR_BURST + 100)
        payloads = tuple(b'{"type":"ping"}' for _ in range(n))
        expect = Expect(answers=frozenset({"pong"}), codes=frozenset({"rate_limited"}),
                        closes=frozenset({BUDGET_CLOSE}), must_close=True)
        return FuzzFrame("flood_rate", payloads, expect, False, f"{n} pings")


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    """One WebSocket frame as it goes on the wire (RFC 6455 §5.2); a client frame carries a ``mask``."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    masked = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([masked | n])
    elif n < 65536:
        head += bytes([masked | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([masked | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    key = int.from_bytes(mask * (n // 4 + 1), "big") >> (8 * (4 - n % 4) if n % 4 else 0)
    data = (int.from_bytes(payload, "big") ^ (key & ((1 << (8 * n)) - 1))).to_bytes(n, "big") if n else b""
    return head + mask + data


# -- classification --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    outcome: str  # error:<code>, answer:<type>, close:<code>, no_answer, stuck
    problems: tuple[str, ...] = ()


def is_async_frame(frame: dict[str, Any]) -> bool:
    """Frames that answer no request: events, gap reports, the token expiry notice."""
    ftype = frame.get("type")
    if ftype in EVENT_TYPES and "seq" in frame:
        return True
    if ftype == "replay_complete" and "request_id" not in frame:
        return True
    return ftype == "error" and frame.get("code") == "token_expired"


def classify(frame: FuzzFrame, answers: list[dict[str, Any]], close_code: int | None, barrier: bool,
             *, foreign: frozenset[str] = frozenset(), own: frozenset[str] = frozenset()) -> Verdict:
    """Judge what came back for one frame (or one flood): ``answers`` are the frames received after it
    and before the barrier's pong (events taken out), ``close_code`` the close if the connection was
    closed meanwhile, ``barrier`` whether the pong came. ``foreign``/``own``: the threads a ``resume``
    named that are not / are the user's."""
    expect = frame.expect
    problems: list[str] = []
    errors = [a for a in answers if a.get("type") == "error"]
    others = [a for a in answers if a.get("type") != "error"]
    allowed_codes = expect.codes | ANY_FRAME_CODES
    for err in errors:
        code = err.get("code")
        if code not in ERROR_CODES:
            problems.append(f"error code {code!r} is not documented")
        elif code in BROKEN_ERRORS:
            problems.append(f"error {code}: {BROKEN_ERRORS[code]}")
        elif code not in allowed_codes:
            problems.append(f"error {code}, expected {expect.describe()}")
    allowed_types = set(expect.answers)
    for ftype in list(allowed_types):
        allowed_types |= TRAILING.get(ftype, set())
    for other in others:
        ftype = other.get("type")
        if ftype not in allowed_types:
            what = "a frame that must be refused" if not expect.answers else "this frame"
            problems.append(f"answered {ftype} to {what}, expected {expect.describe()}")
        if ftype == "resumed":
            listed = set(other.get("forbidden") or [])
            if foreign - listed:
                problems.append(f"resumed does not list {sorted(foreign - listed)[:3]} as forbidden")
            if listed & own or set(other.get("threads") or {}) & foreign:
                problems.append("resumed mixes up the user's threads and others'")
    if frame.count == 1 and expect.check_request_id:
        for ans in answers:
            if "request_id" in ans and ans["request_id"] is None:
                problems.append(f"{ans.get('type')} carries request_id null")
            elif "request_id" in ans and ans["request_id"] != expect.request_id:
                problems.append(f"{ans.get('type')} carries request_id {str(ans['request_id'])[:40]!r}, "
                                f"not the frame's {expect.request_id!r}")
            elif "request_id" not in ans and expect.request_id is not None:
                problems.append(f"{ans.get('type')} {ans.get('code', '')} does not echo the request_id".replace(
                    "  ", " "))
    if close_code is not None:
        if close_code not in CLOSE_CODES:
            problems.append(f"close {close_code} is not documented")
        elif close_code in BROKEN_CLOSES:
            problems.append(f"close {close_code}: {BROKEN_CLOSES[close_code]}")
        elif close_code not in expect.closes | {BUDGET_CLOSE}:
            problems.append(f"close {close_code}, expected {expect.describe()}")
        outcome = f"close:{close_code}"
    elif not barrier:
        problems.append("neither an answer nor the barrier's pong in time, the connection open")
        outcome = "stuck"
    else:
        if expect.must_close:
            problems.append(f"the connection stayed open, expected close {'/'.join(map(str, sorted(expect.closes)))}")
        if not answers:
            problems.append("no answer at all (the barrier's pong came)")
        primary = [o for o in others if o.get("type") != "replay_complete"] or others
        outcome = f"error:{errors[0].get('code')}" if errors else f"answer:{primary[0].get('type')}" if others \
            else "no_answer"
    return Verdict(outcome, tuple(problems))


# -- the canary --------------------------------------------------------------------------------------------


@dataclass
class CanaryRun:
    """One canary run as it was seen: what was asked, when the frames came, and the run's events."""

    agent: str
    number: int
    expected_result: Any
    thread_id: str
    run_id: str
    previous_seq: int  # the thread's last seq before the run (0: a new thread)
    previous_runs: int  # runs earlier in the thread
    sent_at: float
    accepted_at: float
    events: list[dict[str, Any]]
    arrived: list[float]  # monotonic receive time of each event
    user_id: str


SCRIPTED_TYPES = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_thinking",
                  "agent_completed"]
MATH_TYPES = ["agent_started", "agent_thinking", "agent_thinking", "tool_executing", "tool_completed",
              "agent_completed"]


def canary_request(agent: str, number: int) -> tuple[str, dict[str, Any] | None, Any]:
    """The message, options and expected result of the canary's run ``number``."""
    a, b, c = 3 + number % 97, 5 + number % 13, 7 + number % 11
    if agent == "math":
        return f"What is {a}*({b}+{c})?", None, a * (b + c)
    steps = [{"think": f"canary {number}: adding {a} and {b}"},
             {"tool": "calculator", "params": {"expression": f"{a}+{b}"}},
             {"think": f"canary {number}: the sum is known"},
             {"complete": {"result": {"canary": number, "sum": a + b}, "summary": f"canary run {number}"}}]
    return f"canary {number}", {"steps": steps}, {"canary": number, "sum": a + b}


def check_canary_run(run: CanaryRun, *, start_bound_s: float, end_bound_s: float) -> list[str]:
    """Everything wrong with one canary run: seqs, order, lifecycle, the result, the time bounds."""
    problems: list[str] = []
    events = run.events
    if not events:
        return ["no event of the run arrived"]
    seqs = [e.get("seq") for e in events]
    wanted = list(range(run.previous_seq + 1, run.previous_seq + 1 + len(events)))
    if seqs != wanted:
        problems.append(f"seqs {seqs} are not {run.previous_seq + 1}…{run.previous_seq + len(events)} in order")
    for e in events:
        if (e.get("run_id"), e.get("thread_id"), e.get("user_id")) != (run.run_id, run.thread_id, run.user_id):
            problems.append(f"event seq {e.get('seq')} belongs to run {str(e.get('run_id'))[:8]} of "
                            f"{e.get('user_id')!r}, thread {str(e.get('thread_id'))[:8]}")
            break
    types = [e.get("type") for e in events if e.get("type") != "tool_progress"]
    expected = MATH_TYPES if run.agent == "math" else SCRIPTED_TYPES
    if types != expected:
        problems.append(f"events {types}, expected {expected}")
    calls: dict[str, int] = {}
    for e in events:
        call = (e.get("data") or {}).get("tool_call_id")
        if e.get("type") == "tool_executing":
            calls[call] = calls.get(call, 0) + 1
        elif e.get("type") == "tool_completed":
            if calls.get(call, 0) != 1:
                problems.append(f"tool_completed {call} without its tool_executing")
            calls[call] = calls.get(call, 0) + 1
    last = events[-1]
    data = last.get("data") or {}
    if last.get("type") == "agent_completed":
        if data.get("status") != "completed":
            problems.append(f"agent_completed status {data.get('status')!r}: {str(data.get('summary'))[:80]}")
        elif data.get("result") != run.expected_result:
            problems.append(f"result {data.get('result')!r}, expected {run.expected_result!r}")
    started = next((i for i, e in enumerate(events) if e.get("type") == "agent_started"), None)
    if started is not None:
        context = (events[started].get("data") or {}).get("context") or {}
        if context.get("previous_runs", run.previous_runs) != run.previous_runs:
            problems.append(f"agent_started says {context.get('previous_runs')} earlier runs, not "
                            f"{run.previous_runs}")
        delay = run.arrived[started] - run.accepted_at
        if delay > start_bound_s:
            problems.append(f"agent_started {delay:.2f} s after run_accepted (bound {start_bound_s:g} s)")
    total = run.arrived[-1] - run.sent_at
    if total > end_bound_s:
        problems.append(f"the run took {total:.1f} s (bound {end_bound_s:g} s)")
    return problems


# -- the run against a stack -------------------------------------------------------------------------------


class UsageError(Exception):
    """A mistake in what was asked for, or a stack that is not there: one line, exit 2."""


@dataclass
class Violation:
    kind: str
    frame: str
    outcome: str
    expected: str
    problems: list[str]
    server_id: str = ""
    at_s: float = 0.0

    def line(self) -> str:
        where = f" [{self.server_id}]" if self.server_id else ""
        return f"{self.kind}{where}: {'; '.join(self.problems)}\n    frame: {self.frame}\n    outcome: " \
               f"{self.outcome}; expected: {self.expected}"


@dataclass
class Options:
    url: str
    frames: int = 10000
    connections: int = 4
    seed: int = 0
    duration_max_s: float = 300.0
    canaries: int = 2
    canary_interval_s: float = 0.5  # between the starts of one canary connection's runs (tools: 5 calls/s per user)
    start_bound_s: float = 2.0
    end_bound_s: float = 20.0
    barrier_timeout_s: float = 10.0
    progress_s: float = 3.0
    kinds: list[str] | None = None


class FuzzSocket:
    """One fuzz connection: raw sends, and the frames received since the last look."""

    def __init__(self, ws: Any, established: dict[str, Any]) -> None:
        self.ws = ws
        self.established = established
        self.server_id = str(established.get("server_id", ""))
        self.inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.oddities: list[str] = []  # what the server must never send: binary frames, non-JSON text
        self.messages = 0  # messages sent on this connection (the inbound budget)
        self.errors = 0  # error frames received (the error budget)
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str, compression: str | None) -> FuzzSocket:
        from websockets.asyncio.client import connect
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, compression=compression,
                           max_size=8 * 1024 * 1024, open_timeout=10, close_timeout=2, ping_interval=None)
        first = await asyncio.wait_for(ws.recv(), 10)
        established = orjson.loads(first)
        if established.get("type") != "connection_established":
            await ws.close()
            raise ConnectionError(f"the first frame is {str(first)[:80]}")
        return cls(ws, established)

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self.oddities.append(f"a binary frame from the server: {shorten(raw, 60)}")
                    raw = raw.decode(errors="replace")
                try:
                    frame = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    self.oddities.append(f"a frame that is not JSON: {shorten(raw.encode(), 60)}")
                    continue
                if not isinstance(frame, dict):
                    self.oddities.append(f"a frame that is not an object: {shorten(raw.encode(), 60)}")
                    continue
                if frame.get("type") == "error":
                    self.errors += 1
                self.inbox.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            self.inbox.put_nowait(None)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.reader.done() else None

    async def send(self, payload: bytes, binary: bool) -> None:
        self.messages += 1
        await self.ws.send(payload, text=not binary)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


def process_ids() -> dict[str, int | None]:
    """The process id of every application process of the native stack (supervisord's view)."""
    from .stack import native
    found: dict[str, int | None] = {}
    for name in (*native.GATEWAYS, *native.WORKERS, "haproxy"):
        try:
            found[name] = native.component_pid(name)
        except SystemExit:
            found[name] = None
    return found


def log_sizes() -> dict[str, int]:
    """How long each gateway's and worker's log is now (where to look for new tracebacks afterwards)."""
    from .stack import native
    folder = native.stack_dir() / "logs"
    return {name: (folder / f"{name}.log").stat().st_size if (folder / f"{name}.log").exists() else 0
            for name in (*native.GATEWAYS, *native.WORKERS)}


def tracebacks(text: str) -> Counter[str]:
    """The tracebacks in a piece of log: the log line before each, and the exception it ended with."""
    found: Counter[str] = Counter()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last)"):
            continue
        before = re.sub(r"^ts=\S+ \S+ ", "", lines[i - 1]) if i else ""
        before = re.sub(r"\b(run_id|thread_id|connection_id|user_id)=\S+", r"\1=…", before)
        end = next((ln for ln in lines[i + 1:] if ln and not ln.startswith((" ", "\t", "Traceback"))), "?")
        found[f"{end[:160]} (after: {before[:120]})"] += 1
    return found


def new_tracebacks(sizes: dict[str, int]) -> dict[str, Counter[str]]:
    from .stack import native
    folder = native.stack_dir() / "logs"
    found = {}
    for name, offset in sizes.items():
        path = folder / f"{name}.log"
        if path.exists():
            with path.open("rb") as log:
                log.seek(offset)
                found[name] = tracebacks(log.read().decode(errors="replace"))
    return {name: counts for name, counts in found.items() if counts}


def gateway_health() -> dict[str, bool]:
    from .stack import native
    status = {}
    for name, port in native.GATEWAYS.items():
        try:
            with urllib.request.urlopen(f"http://{native.HOST}:{port}/health", timeout=2) as resp:
                status[name] = resp.status == 200
        except OSError:
            status[name] = False
    return status


class Fuzzer:
    def __init__(self, options: Options, secret: str) -> None:
        self.o = options
        self.secret = secret
        suffix = random.SystemRandom().getrandbits(40).to_bytes(5, "big").hex()  # fresh users for every run
        self.user = f"fuzz-{suffix}"
        self.canary_user = f"canary-{suffix}"
        self.kit = TokenKit(secret, self.user, f"fuzz-other-{suffix}")
        self.ids: dict[str, list[str]] = {role: [] for role in ROLES.values()}
        self.victim_threads: deque[str] = deque(maxlen=10)
        self.victim_runs: deque[str] = deque(maxlen=10)
        self.sent = 0
        self.reopened = 0
        self.rotated = 0
        self.outcomes: dict[str, Counter[str]] = {}
        self.timing: dict[str, list[float]] = {}  # kind -> [seconds in total, the longest case]
        self.violations: list[Violation] = []
        self.violation_count = 0
        self.by_problem: Counter[str] = Counter()
        self.servers: Counter[str] = Counter()
        self.canary_runs: Counter[str] = Counter()
        self.canary_starts: list[float] = []
        self.canary_totals: list[float] = []
        self.started = time.monotonic()
        self.deadline = self.started + options.duration_max_s
        self.stop = asyncio.Event()
        self.canary_ready = asyncio.Event()  # set once a canary run exists for the frames aimed at another user
        self.stopped_by = "frames"
        self.tracebacks: dict[str, Counter[str]] = {}

    # -- helpers ------------------------------------------------------------------------------------
    def token(self, user: str, permissions: list[str] | None = None) -> str:
        claims = self.kit.claims(time.time(), random.Random(), sub=user, exp=int(time.time()) + 3600,
                                 permissions=permissions or [])
        return self.kit.sign(claims)

    def violation(self, kind: str, frame: str, outcome: str, expected: str, problems: list[str],
                  server_id: str = "") -> None:
        self.violation_count += 1
        for problem in problems:
            self.by_problem[f"{kind}: {re.sub(r'[0-9a-f]{32}', '…', problem)[:120]}"] += 1
        if len(self.violations) < 500:
            self.violations.append(Violation(kind, frame, outcome, expected, problems, server_id,
                                             round(time.monotonic() - self.started, 2)))

    def count(self, kind: str, outcome: str, seconds: float) -> None:
        self.outcomes.setdefault(kind, Counter())[outcome] += 1
        spent = self.timing.setdefault(kind, [0.0, 0.0])
        spent[0] += seconds
        spent[1] = max(spent[1], seconds)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def progress(self) -> str:
        return (f"fuzz: {self.sent}/{self.o.frames} frames, {self.reopened} connections reopened, "
                f"{self.violation_count} violations, {sum(self.canary_runs.values())} canary runs")

    # -- setup ------------------------------------------------------------------------------------------
    async def setup_own_ids(self) -> None:
        """Threads and runs of the fuzz user, for the frames that name the user's own."""
        from .testing.client import RecordingClient
        client = RecordingClient(self.o.url, self.token(self.user), name="fuzz-setup")
        try:
            await client.connect(10)
        except Exception as exc:
            raise UsageError(f"cannot open a connection to {self.o.url}: {str(exc).splitlines()[0]}") from None
        try:
            for i in range(2):
                accepted = await client.start_agent("math", f"What is {i}+1?", timeout_s=10)
                if accepted.type != "run_accepted":
                    raise UsageError(f"the fuzz user cannot start a run: {accepted.raw[:120]}")
                self.ids["own_thread"].append(accepted.data["thread_id"])
                self.ids["own_run"].append(accepted.data["run_id"])
                await client.wait_run_end(accepted.data["run_id"], 20)
        finally:
            await client.close()

    # -- fuzz connections ---------------------------------------------------------------------------
    async def open_socket(self, index: int) -> FuzzSocket | None:
        compression = "deflate" if index % 2 else None
        delay = 0.05
        while self.time_left() > 0:
            try:
                sock = await FuzzSocket.open(self.o.url, self.token(self.user), compression)
                self.servers[sock.server_id] += 1
                return sock
            except Exception as exc:  # the gateway is not there: that is itself a finding
                self.violation("connect", "(handshake)", f"refused: {str(exc)[:120]}", "connection_established",
                               [f"the fuzz connection could not be opened: {str(exc)[:160]}"])
                with contextlib.suppress(TimeoutError):  # back off, unless the run is over meanwhile
                    await asyncio.wait_for(self.stop.wait(), delay)
                delay = min(delay * 2, 2.0)
        return None

    async def exchange(self, sock: FuzzSocket, frame: FuzzFrame, payloads: list[bytes],
                       barrier_id: str) -> tuple[list[dict[str, Any]], int | None, bool]:
        """Send the frame(s) and the barrier; collect the answers up to the barrier's pong or the close."""
        from websockets.exceptions import ConnectionClosed
        answers: list[dict[str, Any]] = []
        barrier = orjson.dumps({"type": "ping", "request_id": barrier_id, "in_order": True})
        # After a frame the gateway must close on (1002, 1007, 1009) the close comes first: a message sent
        # behind it races the close through HAProxy (the reset can overtake it), so the barrier waits.
        hold = frame.expect.must_close and frame.count == 1
        try:
            for payload in payloads:
                if frame.wire:
                    sock.messages += 1
                    sock.ws.transport.write(payload)
                else:
                    await sock.send(payload, frame.binary)
            if hold:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sock.reader), 3.0)
            if not sock.reader.done():
                await sock.send(barrier, False)
        except ConnectionClosed:
            pass
        deadline = time.monotonic() + self.o.barrier_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return answers, None, False
            try:
                item = await asyncio.wait_for(sock.inbox.get(), remaining)
            except TimeoutError:
                return answers, None, False
            if item is None:
                await asyncio.gather(sock.reader, return_exceptions=True)
                return answers, sock.ws.close_code or 1006, False
            if item.get("type") == "pong" and item.get("request_id") == barrier_id:
                if item.get("in_order") is not True:
                    sock.oddities.append(f"the barrier's pong is not in order: {orjson.dumps(item)[:100]!r}")
                return answers, None, True
            if is_async_frame(item):
                if item.get("user_id") not in (None, self.user):
                    sock.oddities.append(f"an event of another user ({item.get('user_id')}) reached the fuzz user")
                continue
            answers.append(item)

    def fits(self, sock: FuzzSocket, frame: FuzzFrame) -> bool:
        """Whether the frame and its barrier stay inside the connection's inbound and error budgets."""
        if frame.expect.must_close:
            return sock.messages == 0
        return sock.messages + frame.count + 1 < INBOUND_BURST - 2 and sock.errors + frame.count < ERROR_BURST - 5

    async def fuzz_connection(self, index: int, quota: int) -> None:
        generator = FrameGenerator(self.o.seed, index, kit=self.kit, kinds=self.o.kinds)
        sock: FuzzSocket | None = None
        done = 0
        try:
            while done < quota and not self.stop.is_set():
                if self.time_left() <= 0:
                    self.stopped_by = "duration"
                    break
                frame = generator.next()
                if sock is not None and (sock.close_code is not None or not self.fits(sock, frame)):
                    if sock.close_code is None:
                        self.rotated += 1
                    await sock.close()
                    sock = None
                if sock is None:
                    sock = await self.open_socket(index)
                    if sock is None:
                        break
                payloads = [resolve(p, self.ids) for p in frame.payloads]
                foreign, own = self.resume_targets(payloads[0]) if frame.count == 1 else (frozenset(), frozenset())
                barrier_id = f"fz-barrier-{index}-{done}"
                began = time.monotonic()
                answers, close_code, barrier = await self.exchange(sock, frame, payloads, barrier_id)
                verdict = classify(frame, answers, close_code, barrier, foreign=foreign, own=own)
                problems = list(verdict.problems) + sock.oddities
                sock.oddities = []
                self.count(frame.kind, verdict.outcome, time.monotonic() - began)
                self.sent += frame.count
                done += frame.count
                if problems:
                    self.violation(frame.kind, frame.describe(), verdict.outcome + self.answer_text(answers),
                                   frame.expect.describe(), problems, sock.server_id)
                if any(a.get("type") == "auth_refreshed" for a in answers):
                    await sock.close()  # a connection on a refreshed token: start afresh
                    sock = None
                    self.rotated += 1
                elif close_code is not None or not barrier:
                    if close_code is not None:
                        self.reopened += 1
                    await sock.close()
                    sock = None
        finally:
            if sock is not None:
                await sock.close()

    @staticmethod
    def answer_text(answers: list[dict[str, Any]]) -> str:
        if not answers:
            return ""
        shown = ", ".join(a.get("type", "?") + (f" {a.get('code')}" if a.get("type") == "error" else "")
                          for a in answers[:3])
        return f" ({shown}{', …' if len(answers) > 3 else ''})"

    def resume_targets(self, payload: bytes) -> tuple[frozenset[str], frozenset[str]]:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return frozenset(), frozenset()
        if not isinstance(msg, dict) or msg.get("type") != "resume" or not isinstance(msg.get("threads"), dict):
            return frozenset(), frozenset()
        own = frozenset(t for t in msg["threads"] if t in self.ids["own_thread"])
        return frozenset(msg["threads"]) - own, own

    # -- the canary -----------------------------------------------------------------------------------
    async def canary(self, index: int) -> None:
        from .testing.client import RecordingClient
        client: RecordingClient | None = None
        threads: list[dict[str, Any]] = [{}, {}]
        number = index * 1_000_000
        user = f"{self.canary_user}-{index}"
        try:
            while not self.stop.is_set() and self.time_left() > 0:
                if client is None or not client.connected:
                    if client is not None:
                        self.violation("canary", f"canary connection {index}", f"closed {client.close_code}",
                                       "the connection stays open", [f"the canary connection was closed "
                                                                     f"({client.close_code} {client.close_reason})"])
                        await client.close()
                    client = RecordingClient(self.o.url, self.token(user, ["agents:script"]), name=f"canary{index}")
                    await client.connect(10)
                    threads = [{}, {}]
                number += 1
                began = time.monotonic()
                await self.canary_run(client, user, threads[(number // 2) % 2], number)
                # The pace keeps the canary under the tools' per-user rate limit (§10): a wait on the stop.
                pause = began + self.o.canary_interval_s - time.monotonic()
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), pause)
        except Exception as exc:  # a canary that cannot go on is a violation, not a crash of the run
            self.violation("canary", f"canary connection {index}", f"{type(exc).__name__}",
                           "runs complete in order", [str(exc).splitlines()[0][:200]])
            self.canary_ready.set()
        finally:
            if client is not None:
                await client.close()

    async def canary_run(self, client: Any, user: str, thread: dict[str, Any], number: int) -> None:
        agent = "math" if number % 2 else "scripted"
        message, options, result = canary_request(agent, number)
        since = len(client.frames)
        sent_at = time.monotonic()
        try:
            accepted = await client.start_agent(agent, message, thread_id=thread.get("id"), options=options,
                                                timeout_s=self.o.start_bound_s + 3)
        except AssertionError as exc:
            self.violation("canary", f"start_agent {agent} #{number}", "no answer", "run_accepted",
                           [str(exc).splitlines()[0][:200]])
            return
        if accepted.type != "run_accepted":
            self.violation("canary", f"start_agent {agent} #{number}", accepted.raw[:120], "run_accepted",
                           [f"the canary's run was refused: {accepted.data.get('code')}"])
            return
        run_id, thread_id = accepted.data["run_id"], accepted.data["thread_id"]
        self.victim_runs.append(run_id)
        if thread_id not in self.victim_threads:
            self.victim_threads.append(thread_id)
        self.ids["victim_run"], self.ids["victim_thread"] = list(self.victim_runs), list(self.victim_threads)
        self.canary_ready.set()
        problems: list[str] = []
        try:
            await client.wait_run_end(run_id, self.o.end_bound_s)
            await client.barrier(self.o.barrier_timeout_s)
        except AssertionError as exc:
            problems.append(str(exc).splitlines()[0][:200])
        frames = [f for f in client.frames[since:] if f.is_event]
        strangers = [f for f in frames if f.data.get("run_id") != run_id]
        mine = [f for f in frames if f.data.get("run_id") == run_id]
        run = CanaryRun(agent, number, result, thread_id, run_id, thread.get("seq", 0), thread.get("runs", 0),
                        sent_at, accepted.at, [f.data for f in mine], [f.at for f in mine], user)
        problems += check_canary_run(run, start_bound_s=self.o.start_bound_s, end_bound_s=self.o.end_bound_s)
        if strangers:
            problems.append(f"{len(strangers)} events of other runs arrived: {strangers[0].raw[:100]}")
        for f in mine:
            try:
                validate_server_frame(f.data)
            except Exception as exc:
                problems.append(f"event seq {f.data.get('seq')} breaks its schema: {str(exc).splitlines()[0][:120]}")
                break
        self.canary_runs[agent] += 1
        started = next((f.at for f in mine if f.type == "agent_started"), None)
        if started is not None:
            self.canary_starts.append(started - accepted.at)
        if mine:
            self.canary_totals.append(mine[-1].at - sent_at)
        thread.update(id=thread_id, seq=max([thread.get("seq", 0), *[f.data.get("seq", 0) for f in mine]]),
                      runs=thread.get("runs", 0) + 1)
        if problems:
            self.violation("canary", f"{agent} run #{number} ({run_id[:8]}, thread {thread_id[:8]})",
                           f"{len(mine)} events: {[f.type for f in mine]}", "a complete run, gapless, in order",
                           problems)

    # -- the whole run ----------------------------------------------------------------------------------
    async def reporter(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.o.progress_s)
            if not self.stop.is_set():
                print(self.progress(), flush=True)

    async def run(self) -> dict[str, Any]:
        before = process_ids()
        logs = log_sizes()
        await self.setup_own_ids()
        canaries = [asyncio.create_task(self.canary(i)) for i in range(self.o.canaries)]
        await self.wait_canary_ready()
        reporter = asyncio.create_task(self.reporter())
        k = self.o.connections
        quotas = [self.o.frames // k + (1 if i < self.o.frames % k else 0) for i in range(k)]
        await asyncio.gather(*(self.fuzz_connection(i, q) for i, q in enumerate(quotas)))
        fuzz_s = time.monotonic() - self.started
        self.stop.set()
        # The canaries finish the run they are in; past --duration-max they get a few seconds, then are cut.
        grace = max(5.0, min(self.o.end_bound_s, self.time_left() + 5.0))
        try:
            await asyncio.wait_for(asyncio.gather(*canaries, reporter), grace)
        except TimeoutError:
            pass
        after = process_ids()
        health = await asyncio.to_thread(self.wait_gateways_healthy)
        for name, pid in before.items():
            if pid is None or after.get(name) != pid:
                self.violation("restart", name, f"pid {pid} -> {after.get(name)}", "the same process",
                               [f"{name} restarted during the fuzz (pid {pid} -> {after.get(name)})"])
        for name, ok in health.items():
            if not ok:
                self.violation("restart", name, "/health not 200", "200", [f"{name} does not answer /health"])
        # A hostile frame that makes a process fail shows in its log even when the protocol hides it.
        self.tracebacks = new_tracebacks(logs)
        for name, counts in self.tracebacks.items():
            for what, n in counts.items():
                self.violation("traceback", f"{name} log", f"{n} tracebacks", "none",
                               [f"{name} logged {n} x {what}"])
        return self.report(before, after, fuzz_s)

    async def wait_canary_ready(self, timeout_s: float = 30.0) -> None:
        """The fuzz starts once the canary has a thread and a run for the frames aimed at another user."""
        try:
            await asyncio.wait_for(self.canary_ready.wait(), timeout_s)
        except TimeoutError:
            self.violation("canary", "the first canary run", "none", "run_accepted",
                           [f"no canary run was accepted within {timeout_s:g} s"])

    def wait_gateways_healthy(self, timeout_s: float = 10.0) -> dict[str, bool]:
        deadline = time.monotonic() + timeout_s
        status = gateway_health()
        while not all(status.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
            status = gateway_health()
        return status

    def report(self, before: dict[str, int | None], after: dict[str, int | None], fuzz_s: float) -> dict[str, Any]:
        totals: Counter[str] = Counter()
        for counts in self.outcomes.values():
            totals.update(counts)

        def stats(values: list[float]) -> dict[str, float]:
            if not values:
                return {}
            ordered = sorted(values)
            return {"p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
                    "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
                    "max_ms": round(ordered[-1] * 1000, 1)}

        return {
            "seed": self.o.seed, "url": self.o.url, "frames_requested": self.o.frames, "frames_sent": self.sent,
            "cases": sum(totals.values()), "connections": self.o.connections, "duration_s": round(fuzz_s, 1),
            "stopped_by": self.stopped_by, "connections_reopened": self.reopened, "connections_rotated": self.rotated,
            "gateways": dict(self.servers),
            "kinds": {k: dict(sorted(v.items())) for k, v in sorted(self.outcomes.items())},
            "time_per_kind": {k: {"mean_ms": round(v[0] / max(1, sum(self.outcomes[k].values())) * 1000, 2),
                                  "max_ms": round(v[1] * 1000, 1)} for k, v in sorted(self.timing.items())},
            "outcomes": dict(totals.most_common()),
            "canary": {"runs": dict(self.canary_runs), "agent_started_after_run_accepted": stats(self.canary_starts),
                       "run_duration": stats(self.canary_totals), "start_bound_s": self.o.start_bound_s},
            "processes": {"before": before, "after": after},
            "tracebacks": {name: dict(counts) for name, counts in self.tracebacks.items()},
            "violation_count": self.violation_count, "violations_by_problem": dict(self.by_problem.most_common()),
            "violations": [v.__dict__ for v in self.violations],
        }


def summary(report: dict[str, Any], limit: int = 10) -> str:
    lines = [f"fuzz: seed {report['seed']}: {report['frames_sent']} frames ({report['cases']} cases) in "
             f"{report['duration_s']} s over {report['connections']} connections "
             f"({', '.join(f'{k} {v}' for k, v in sorted(report['gateways'].items()))} connections opened); "
             f"{report['connections_reopened']} reopened after a close, {report['connections_rotated']} rotated"
             + (" — stopped at --duration-max" if report["stopped_by"] == "duration" else "")]
    lines.append(f"{'kind':22} {'cases':>6}  outcomes")
    for kind, counts in report["kinds"].items():
        shown = ", ".join(f"{o} {n}" for o, n in sorted(counts.items(), key=lambda x: -x[1]))
        lines.append(f"{kind:22} {sum(counts.values()):6}  {shown}")
    canary = report["canary"]
    start = canary["agent_started_after_run_accepted"]
    agents = ", ".join(f"{k} {v}" for k, v in canary["runs"].items())
    lines.append(f"canary: {sum(canary['runs'].values())} runs ({agents})"
                 + (f"; agent_started after run_accepted p50 {start['p50_ms']} ms, max {start['max_ms']} ms"
                    if start else ""))
    before, after = report["processes"]["before"], report["processes"]["after"]
    lines.append("processes: " + ", ".join(f"{n} {before[n]}" + ("" if before[n] == after.get(n) else
                                                                 f" -> {after.get(n)} RESTARTED") for n in before))
    lines.append(f"violations: {report['violation_count']}")
    for problem, n in list(report["violations_by_problem"].items())[:limit]:
        lines.append(f"  {n:6} x {problem}")
    for v in report["violations"][:limit]:
        lines.append("  - " + Violation(**v).line().replace("\n", "\n  "))
    return "\n".join(lines)


def check_url(url: str) -> None:
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--url {url!r} is not a ws:// URL")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") and not parts.hostname.startswith("127."):
        raise UsageError(f"--url {url!r}: the fuzz run only targets loopback addresses")


def check_stack(url: str) -> str:
    """The JWT secret of a native stack that is up with every process running; else a UsageError."""
    import os
    import socket
    from urllib.parse import urlsplit

    from .stack import native
    if not native.supervisor_running(native.Paths(native.stack_dir())):
        raise UsageError(f"the native stack in {native.stack_dir()} is not running (agentevents stack up; "
                         "AE_STACK_OFFSET and AE_STACK_DIR select it)")
    missing = [name for name, pid in process_ids().items() if pid is None]
    if missing:
        raise UsageError(f"the native stack is not whole: {', '.join(missing)} not running")
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 80), timeout=3).close()
    except OSError as exc:
        raise UsageError(f"cannot reach {url}: {exc.strerror or exc}") from None
    secret = os.environ.get("AE_JWT_SECRET") or native.read_secret()
    if not secret:
        raise UsageError(f"no JWT secret: neither AE_JWT_SECRET nor {native.stack_dir() / 'jwt_secret'}")
    return secret


def run(options: Options, secret: str) -> dict[str, Any]:
    """Run the fuzz against a native stack and return the report."""
    fuzzer = Fuzzer(options, secret)

    async def go() -> dict[str, Any]:
        return await fuzzer.run()

    try:
        import uvloop
    except ImportError:
        return asyncio.run(go())
    return uvloop.run(go())


def command(args: Any) -> int:
    """``agentevents fuzz``: 0 without violations, 1 with any, 2 for a usage error (one line on stderr)."""
    import sys
    from pathlib import Path

    from .stack import native
    url = args.url or f"ws://{native.HOST}:{native.LB_PORT}/ws"
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    try:
        check_url(url)
        unknown = [k for k in kinds or [] if k not in FrameGenerator.KINDS]
        if unknown:
            raise UsageError(f"unknown frame kinds {', '.join(unknown)}; known: {', '.join(FrameGenerator.KINDS)}")
        secret = check_stack(url)
        options = Options(url=url, frames=args.frames, connections=args.connections, seed=seed,
                          duration_max_s=args.duration_max, canaries=args.canaries, start_bound_s=args.start_bound,
                          kinds=kinds)
        print(f"fuzz: seed {seed}, {args.frames} frames over {args.connections} connections to {url}, "
              f"{args.canaries} canary connections, at most {args.duration_max:g} s", flush=True)
        report = run(options, secret)
    except UsageError as exc:
        print(f"agentevents fuzz: {exc}", file=sys.stderr)
        return 2
    print(summary(report))
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1, default=str) + "\n")
        print(f"fuzz: report in {path}")
    return 1 if report["violation_count"] else 0


__all__ = ["Expect", "FrameGenerator", "FuzzFrame", "Options", "TokenKit", "UsageError", "analyze", "check_canary_run",
           "classify", "run", "summary"]
