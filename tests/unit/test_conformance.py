"""The conformance agent's contract: its steps schema, every script the suite sends, and its document.

- The schema (``schema/conformance/steps.json``) is a valid draft 2020-12 schema, strict in every
  step kind, and names the same step kinds the scripted agent carries out.
- Every script the specification sends follows it. The feature files are parsed with behave's
  parser (outlines expanded, backgrounds included) and each step is matched against the step
  definitions of features/steps, loaded as behave loads them; a definition that calls
  ``script_for(behaviour)`` contributes the phrase its sentence names. Scripts the step library
  builds with a phrase or a ``steps(...)`` of its own are read from its source and computed.
  Each script is checked by ``validate_steps`` and accepted by the scripted agent.
- Scripts that break the schema are refused, with a message naming the step and the problem, and
  a refused script reaches the user as the failure to create the agent.
- docs/conformance.md names every step kind and every capability.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from memory_bus import MemoryBus

from agentevents.agents.registry import AgentFactoryError, default_registry
from agentevents.agents.scripted import MAX_STEPS, ScriptedAgent
from agentevents.config import Settings
from agentevents.protocol.conformance import (
    CONFORMANCE_VERSION,
    InvalidSteps,
    problems,
    step_kinds,
    steps_schema,
    validate_steps,
)
from agentevents.testing.capabilities import CAPABILITIES
from agentevents.worker.engine import ExecutionEngine

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "features"
STEP_LIBRARY = FEATURES / "steps"
DOCUMENT = ROOT / "docs" / "conformance.md"
# The features named 77 distinct behaviours when these floors were set, and the step library two
# phrases and two scripts of its own: a scan finding far fewer has stopped seeing them.
MIN_FEATURE_PHRASES = 70
MIN_LIBRARY_SCRIPTS = 4


# -- the step library, loaded the way behave loads it ------------------------------------------

@cache
def step_modules() -> dict[str, dict[str, Any]]:
    """Every module of features/steps executed as behave executes it: file name -> its globals."""
    from behave.runner_util import PathManager, exec_file
    from behave.step_registry import setup_step_decorators

    base: dict[str, Any] = {}
    setup_step_decorators(base)
    modules: dict[str, dict[str, Any]] = {}
    with PathManager([str(STEP_LIBRARY)]):
        for path in sorted(STEP_LIBRARY.glob("*.py")):
            namespace = dict(base)
            exec_file(str(path), namespace)
            modules[path.name] = namespace
    return modules


def calls_to(node: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == name]


def parameters(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)}


@cache
def sends_its_behaviour(func: Any) -> bool:
    """Does this step definition start the scripted agent with ``script_for(behaviour)``?"""
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(func))))
    definition = tree.body[0]
    assert isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef)
    return "behaviour" in parameters(definition) and any(
        call.args and isinstance(call.args[0], ast.Name) and call.args[0].id == "behaviour"
        for call in calls_to(definition, "script_for"))


@cache
def feature_phrases() -> dict[str, tuple[str, ...]]:
    """Every behaviour phrase the features hand to ``script_for`` -> where (file:line) they do."""
    from behave.parser import parse_file
    from behave.step_registry import registry

    step_modules()
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(FEATURES.glob("*.feature")):
        for scenario in parse_file(str(path)).walk_scenarios():
            for step in scenario.all_steps:
                match = registry.find_match(step)
                if match is not None and sends_its_behaviour(match.func):  # undefined steps: test_step_usage
                    behaviour = {a.name: a.value for a in match.arguments}["behaviour"]
                    found[behaviour].append(f"{path.relative_to(ROOT)}:{step.line}")
    return {phrase: tuple(where) for phrase, where in found.items()}


@dataclass(frozen=True)
class LibraryScript:
    where: str
    phrase: str | None  # None: a steps(...) built in the step library itself
    steps: Any


class Unresolved(Exception):
    """A script in the step library whose value cannot be computed from its source."""


def _value(node: ast.expr, namespace: dict[str, Any], local: dict[str, Any]) -> Any:
    if isinstance(node, ast.Starred):
        raise Unresolved("a *starred argument")
    try:
        return eval(compile(ast.Expression(node), "<step library>", "eval"), namespace, dict(local))
    except Exception as exc:
        raise Unresolved(f"{type(exc).__name__}: {exc}") from None


def _constants(func: ast.AST, namespace: dict[str, Any]) -> dict[str, Any]:
    """Names a function binds to a literal or an f-string of literals, in source order."""
    local: dict[str, Any] = {}
    assigns = sorted((n for n in ast.walk(func) if isinstance(n, ast.Assign) and len(n.targets) == 1
                      and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Constant | ast.JoinedStr)),
                     key=lambda n: n.lineno)
    for node in assigns:
        try:
            local[node.targets[0].id] = _value(node.value, namespace, local)
        except Unresolved:
            pass
    return local


def _builders(tree: ast.Module) -> set[str]:
    """Functions registered as phrase builders (``register(phrase, builder)``): the features reach them."""
    return {call.args[1].id for call in calls_to(tree, "register")
            if len(call.args) > 1 and isinstance(call.args[1], ast.Name)}


@cache
def library_scripts() -> tuple[tuple[LibraryScript, ...], tuple[str, ...]]:
    """Scripts the step functions send without a phrase from the features, and those it cannot compute."""
    from agentevents.testing.scripts import script_for

    scripts: list[LibraryScript] = []
    unresolved: list[str] = []
    for name, namespace in step_modules().items():
        tree = ast.parse((STEP_LIBRARY / name).read_text(encoding="utf-8"))
        builders = _builders(tree)
        for func in tree.body:
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) or func.name in builders:
                continue
            local = _constants(func, namespace)
            for call in calls_to(func, "script_for"):
                where = f"features/steps/{name}:{call.lineno}"
                arg = call.args[0]
                if isinstance(arg, ast.Name) and arg.id in parameters(func):
                    continue  # the sentence's own phrase: feature_phrases() has it
                try:
                    phrase = arg.id if isinstance(arg, ast.Name) and arg.id in local else None
                    phrase = local[phrase] if phrase else _value(arg, namespace, local)
                except Unresolved as exc:
                    unresolved.append(f"{where}: script_for({ast.unparse(arg)}): {exc}")
                    continue
                scripts.append(LibraryScript(where, phrase, script_for(phrase).get("steps", [])))
            for call in calls_to(func, "steps"):
                where = f"features/steps/{name}:{call.lineno}"
                try:
                    items = [_value(arg, namespace, local) for arg in call.args]
                except Unresolved as exc:
                    unresolved.append(f"{where}: steps(...): {exc}")
                    continue
                scripts.append(LibraryScript(where, None, items))
    return tuple(scripts), tuple(unresolved)


# -- (a) the schema ------------------------------------------------------------------------------

def test_the_schema_is_a_valid_draft_2020_12_schema_of_this_conformance_version():
    schema = steps_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://agentevents.dev/schema/conformance/steps.json"
    assert schema["x-conformance-version"] == CONFORMANCE_VERSION == "1"
    assert f"conformance_version {CONFORMANCE_VERSION}" in schema["title"]
    assert schema["type"] == "array" and schema["maxItems"] == MAX_STEPS


def test_every_step_kind_is_strict_and_requires_its_own_key():
    defs = steps_schema()["$defs"]
    assert len(step_kinds()) == len(set(step_kinds())) >= 13
    for kind in step_kinds():
        assert defs[kind]["type"] == "object", kind
        assert defs[kind]["additionalProperties"] is False, kind
        assert kind in defs[kind]["required"], kind
        others = set(step_kinds()) - {kind}
        assert not others & set(defs[kind]["properties"]), f"{kind} admits another kind's key"


def test_the_schema_has_the_step_kinds_the_scripted_agent_carries_out():
    tree = ast.parse(textwrap.dedent(inspect.getsource(ScriptedAgent._step)))
    handled = {node.left.value for node in ast.walk(tree)
               if isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant)
               and isinstance(node.ops[0], ast.In) and isinstance(node.comparators[0], ast.Name)
               and node.comparators[0].id == "step"}
    assert handled == set(step_kinds())


def test_the_schema_file_is_what_the_module_serves_and_a_copy():
    path = ROOT / "src" / "agentevents" / "protocol" / "schema" / "conformance" / "steps.json"
    assert json.loads(path.read_text(encoding="utf-8")) == steps_schema()
    steps_schema()["$defs"].clear()
    assert steps_schema()["$defs"], "steps_schema() handed out the cached schema itself"


# -- (b) every script the suite sends ------------------------------------------------------------

def summary(found: list[str]) -> str:
    return found[0] + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")


def test_the_features_name_the_behaviours_the_scan_expects():
    phrases = feature_phrases()
    assert len(phrases) >= MIN_FEATURE_PHRASES, \
        f"only {len(phrases)} behaviour phrases found in features/*.feature:\n  " + "\n  ".join(sorted(phrases))
    assert "cannot be created" in phrases and "thinks once" in phrases, sorted(phrases)


def test_every_script_the_features_send_follows_the_schema():
    from agentevents.testing.scripts import script_for

    refused = []
    for phrase, where in sorted(feature_phrases().items()):
        try:
            steps = script_for(phrase).get("steps", [])
        except AssertionError as exc:
            refused.append(f"{where[0]} {phrase!r}: {exc}")
            continue
        found = problems(steps)
        if found:
            refused.append(f"{where[0]} {phrase!r}: {summary(found)}")
    assert not refused, f"{len(refused)} of {len(feature_phrases())} scripts break the steps schema:\n  " \
                        + "\n  ".join(refused)


def test_every_script_the_step_library_sends_by_itself_follows_the_schema():
    scripts, unresolved = library_scripts()
    assert not unresolved, "scripts in the step library this test cannot compute (give them a registered " \
                           "phrase, or build them from literals):\n  " + "\n  ".join(unresolved)
    assert len(scripts) >= MIN_LIBRARY_SCRIPTS, f"only {len(scripts)} scripts found: {scripts}"
    refused = [f"{s.where} {s.phrase or 'steps(...)'}: {summary(problems(s.steps))}"
               for s in scripts if problems(s.steps)]
    assert not refused, "\n  ".join(["scripts that break the steps schema:", *refused])


def test_the_scripted_agent_accepts_every_script_the_suite_sends():
    from agentevents.testing.scripts import script_for

    options = [script_for(p) for p in feature_phrases()] + [{"steps": s.steps} for s in library_scripts()[0]]
    created = [ScriptedAgent(o) for o in options if not o.get("fail_on_init")]
    assert len(created) >= MIN_FEATURE_PHRASES


# -- (c) scripts that break the schema -----------------------------------------------------------

REFUSED = [
    ("unknown kind", [{"thinking": "hello"}], ["step 1", "no known step kind", "thinking"]),
    ("empty step", [{}], ["step 1", "no known step kind"]),
    ("two kinds", [{"think": "a", "sleep": 1}], ["step 1", "several step kinds", "think, sleep"]),
    ("extra key", [{"think": "a"}, {"think": "b", "colour": "red"}], ["step 2 (think)", "'colour' was unexpected"]),
    ("wrong type", [{"sleep": "1"}], ["step 1 (sleep) at sleep", "not of type 'number'"]),
    ("a boolean is no number", [{"sleep": True}], ["step 1 (sleep) at sleep", "not of type 'number'"]),
    ("negative duration", [{"sleep": -0.5}], ["step 1 (sleep) at sleep", "less than the minimum of 0"]),
    ("negative tool timeout", [{"tool": "wait", "params": {"seconds": 1}, "timeout_s": -1}],
     ["step 1 (tool) at timeout_s", "minimum of 0"]),
    ("zero approval timeout", [{"approval": "ok?", "timeout_s": 0}], ["step 1 (approval) at timeout_s"]),
    ("burst of none", [{"burst": 0}], ["step 1 (burst) at burst", "minimum of 1"]),
    ("fractional burst", [{"burst": 2.5}], ["step 1 (burst) at burst", "not of type 'integer'"]),
    ("repeat too often", [{"repeat": 10001, "step": {"think": "a"}}], ["step 1 (repeat) at repeat", "10000"]),
    ("bad step inside a repeat", [{"repeat": 2, "step": {"tink": "a"}}], ["step 1 (repeat) > step", "tink"]),
    ("repeat without its step", [{"repeat": 2}], ["step 1 (repeat)", "'step' is a required property"]),
    ("parallel call with a key only tool steps have", [{"parallel": [{"tool": "wait", "purpose": "x"}]}],
     ["step 1 (parallel) at parallel/0", "'purpose' was unexpected"]),
    ("empty parallel", [{"parallel": []}], ["step 1 (parallel) at parallel", "non-empty"]),
    ("unknown on_error", [{"tool": "calculator", "on_error": "stop"}], ["step 1 (tool) at on_error", "'stop'"]),
    ("tool name empty", [{"tool": ""}], ["step 1 (tool) at tool"]),
    ("params not an object", [{"tool": "echo", "params": ["x"]}], ["step 1 (tool) at params", "'object'"]),
    ("extra key the server sets", [{"tool": "echo", "extra": {"tool_call_id": "x"}}],
     ["step 1 (tool) at extra", "'tool_call_id' is reserved"]),
    ("metadata key the server sets", [{"think": "a", "metadata": {"step": 3}}],
     ["step 1 (think) at metadata", "'step' is reserved"]),
    ("unknown status", [{"complete": {"status": "done"}}], ["step 1 (complete) at complete/status", "'done'"]),
    ("completion field the server computes", [{"complete": {"extra": {"event_count": 1}}}],
     ["complete/extra", "'event_count' is reserved"]),
    ("error neither text nor object", [{"error": 5}], ["step 1 (error) at error", "neither string nor object"]),
    ("error with an unknown key", [{"error": {"code": "x", "text": "y"}}], ["step 1 (error) at error", "'text'"]),
    ("error code empty", [{"error": {"code": ""}}], ["step 1 (error) at error/code"]),
    ("failure without text", [{"fail": None}], ["step 1 (fail) at fail", "not of type 'string'"]),
    ("huge result", [{"large_result": 10**7}], ["step 1 (large_result) at large_result", "maximum"]),
    ("a step that is not an object", ["think"], ["step 1 must be an object", "str"]),
    ("not a list", {"think": "a"}, ["steps must be a list", "dict"]),
    ("too many steps", [{"think": "a"}] * (MAX_STEPS + 1), [f"at most {MAX_STEPS}"]),
]


@pytest.mark.parametrize(("case", "steps", "named"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_script_that_breaks_the_schema_is_refused_with_the_problem_named(case, steps, named):
    with pytest.raises(InvalidSteps) as refused:
        validate_steps(steps)
    for words in named:
        assert words in str(refused.value), f"{case}: {words!r} not in {str(refused.value)!r}"
    with pytest.raises(AgentFactoryError, match=re.escape(f"options.steps is invalid: {refused.value}")):
        ScriptedAgent({"steps": steps})


def test_every_problem_of_a_script_is_counted():
    found = problems([{"sleep": -1}, {"think": "fine"}, {"thinking": "x"}])
    assert [p.split(" ", 2)[:2] for p in found] == [["step", "1"], ["step", "3"]]
    with pytest.raises(InvalidSteps, match=r"^step 1 .*\(and 1 more problem\(s\)\)$"):
        validate_steps([{"sleep": -1}, {"think": "fine"}, {"thinking": "x"}])


def test_valid_scripts_of_every_kind_are_accepted():
    script = [{"think": "t", "metadata": {"kind": "plan"}, "agent": "planner"}, {"burst": 3, "text": "b"},
              {"tool": "finance", "params": {"principal": "$prev"}, "chain": True, "timeout_s": 0.5,
               "purpose": "p", "agent": "a", "on_error": "fail", "extra": {"follow_up": ["x"]}},
              {"parallel": [{"tool": "wait", "params": {"seconds": 0}, "agent": "w"}]}, {"sleep": 0},
              {"error": "text"}, {"error": {"code": "c", "message": "m"}}, {"error": {}}, {"fail": "f"},
              {"approval": "ok?", "timeout_s": 0.1}, {"partial": None}, {"large_result": 0}, {"complete": {}},
              {"complete": {"status": "partial", "result": [1], "summary": "s", "extra": {"error": {"code": "c"}}}},
              {"repeat": 2, "step": {"repeat": 2, "step": {"think": "nested"}}}, {"rollback": "why"}]
    assert problems(script) == []
    assert {k for step in script for k in step if k in step_kinds()} == set(step_kinds())
    assert problems([]) == []


# -- a refused script, as the user sees it -------------------------------------------------------

def run_scripted(options: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a scripted run with these options publishes, through the real engine."""
    bus = MemoryBus()
    engine = ExecutionEngine(bus, None, default_registry(), Settings(jwt_secret="unit"), worker_id="worker-unit")
    request = {"run_id": "a" * 32, "thread_id": "b" * 32, "user_id": "alice-unit", "agent_type": "scripted",
               "message": "go", "options": options, "permissions": ["agents:script"], "tier": "free"}
    asyncio.run(engine.execute(request))
    return bus.events


def test_a_refused_script_is_reported_as_an_agent_that_could_not_be_created():
    events = run_scripted({"steps": [{"think": "fine"}, {"sleep": -1}]})
    assert [e["type"] for e in events] == ["agent_error", "agent_completed"], events
    error, end = events[0]["data"], events[1]["data"]
    assert error["code"] == "agent_init_failed" and error["recoverable"] is False
    assert error["message"] == "options.steps is invalid: step 2 (sleep) at sleep: -1 is less than the minimum of 0"
    assert end["status"] == "failed" and end["error"] == {"code": "agent_init_failed", "message": error["message"]}


def test_a_valid_script_runs_as_the_document_says():
    events = run_scripted({"steps": [{"think": "Looking.", "metadata": {"kind": "plan"}},
                                     {"error": {"code": "source_unavailable", "message": "down"}},
                                     {"complete": {"result": {"rate": 1.08}, "summary": "Converted."}}]})
    assert [e["type"] for e in events] == ["agent_started", "agent_thinking", "agent_error", "agent_completed"]
    assert events[1]["data"] == {"reasoning": "Looking.", "step": 1, "metadata": {"kind": "plan"}}
    assert events[2]["data"] == {"code": "source_unavailable", "message": "down", "recoverable": True}
    end = events[3]["data"]
    assert (end["status"], end["result"], end["summary"]) == ("completed", {"rate": 1.08}, "Converted.")
    assert end["recovered_from"] == ["source_unavailable"]


# -- (d) the document ------------------------------------------------------------------------------

@cache
def document() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


def headings() -> list[str]:
    return [line for line in document().splitlines() if line.startswith("#")]


def test_the_document_has_a_section_for_every_step_kind():
    missing = [k for k in step_kinds() if not any(f"`{k}`" in h for h in headings())]
    assert not missing, f"docs/conformance.md has no heading for the step kind(s) {missing}"


def test_the_document_defines_every_capability():
    missing = [c for c in CAPABILITIES if not any(f"`{c}`" in h for h in headings())]
    assert not missing, f"docs/conformance.md has no heading for the capability(ies) {missing}"


def test_the_document_states_the_conformance_version_and_links_the_schema():
    assert re.search(rf'`conformance_version`[^\n]*"{CONFORMANCE_VERSION}"', document()), \
        "docs/conformance.md does not state the conformance_version"
    assert "schema/conformance/steps.json" in document()


def test_the_protocol_document_links_the_conformance_document():
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert re.search(r"`steps` for `scripted`[^\n]*\(conformance\.md", protocol), \
        "docs/protocol.md does not link docs/conformance.md where it names the scripted agent's steps"


def test_target_profiles_speak_this_conformance_version():
    from agentevents.testing import profile

    assert profile.CONFORMANCE_VERSION == CONFORMANCE_VERSION
    targets = sorted((FEATURES / "targets").glob("*.toml"))
    assert targets, "no target profiles in features/targets"
    for path in targets:
        assert profile.load_profile(path).conformance_version == CONFORMANCE_VERSION, path.name


def test_the_quick_check_by_kind_never_accepts_what_the_whole_schema_refuses():
    from agentevents.protocol.conformance import _each_step_valid, _validator
    from agentevents.testing.scripts import script_for

    scripts = [script_for(p).get("steps", []) for p in feature_phrases()] + [s.steps for s in library_scripts()[0]]
    scripts += [steps for _case, steps, _named in REFUSED]
    scripts += [[{"think": "a", "burst": 2}], [{"repeat": 2, "step": {"think": "a", "sleep": 1}}], [{}], [None]]
    whole = _validator()
    for steps in scripts:
        if _each_step_valid(steps):
            assert whole.is_valid(steps), steps
    assert sum(_each_step_valid(s) for s in scripts) >= 50  # it does accept the valid ones


def test_a_script_seen_valid_is_not_checked_again_and_an_invalid_one_always_is():
    from agentevents.protocol import conformance
    steps = [{"think": "seen before"}, {"sleep": 0}]
    assert problems(steps) == []
    assert orjson.dumps(steps) in conformance._VALID_SCRIPTS
    bad = [{"sleep": -1}]
    assert problems(bad) and problems(bad)  # refused each time, never remembered
    assert orjson.dumps(bad) not in conformance._VALID_SCRIPTS
