"""Every step definition of the specification is used, and every step is defined.

behave's ``steps.usage`` formatter, in a dry run (no stack, no hooks), lists the definitions no
scenario uses and the steps no definition matches; either list fails this test, by name. The
pronoun parse types, which let one definition serve Alice and Bob, are checked here too.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A target that cannot be reached: if a dry run ever started the hooks, it would fail loudly
# instead of starting a stack.
NO_STACK = ["-D", "stack=external", "-D", "ws_url=ws://127.0.0.1:9/ws", "-D", "jwt_secret=dry-run"]


def usage_report() -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as scratch:  # behave.ini's records must not overwrite a run's reports
        command = [sys.executable, "-m", "behave", "--dry-run", "--format", "steps.usage", "--outfile", "-",
                   "--no-summary", "--no-junit", "--no-color", *NO_STACK, "-D", f"records={scratch}/dry.jsonl",
                   "-D", "report_html=", "features"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def section(report: str, title: str) -> list[str]:
    """The entries listed under a steps.usage heading such as 'UNUSED STEP DEFINITIONS[3]:'."""
    found = re.search(rf"^{title}\[(\d+)\]:\n((?:[ \t]+\S.*\n?)*)", report, re.M)
    if not found:
        return []
    return [line.strip() for line in found.group(2).splitlines() if line.strip()]


def test_every_step_definition_is_used_and_every_step_defined() -> None:
    returncode, report = usage_report()
    problems = []
    unused = section(report, "UNUSED STEP DEFINITIONS")
    if unused:
        problems.append(f"{len(unused)} unused step definition(s):\n  " + "\n  ".join(unused))
    undefined = section(report, "UNDEFINED STEPS")
    if undefined:
        problems.append(f"{len(undefined)} undefined step(s):\n  " + "\n  ".join(undefined))
    assert not problems, "\n".join(problems)
    assert returncode == 0, f"behave --dry-run failed with exit code {returncode}:\n{report[-4000:]}"
    assert re.search(r"^@(given|when|then|step)\(", report, re.M), \
        f"the usage report lists no step definition at all:\n{report[-2000:]}"


def test_pronoun_types_serve_everyone_and_keep_one_pronoun_per_sentence() -> None:
    import parse

    from agentevents.testing import parse_types

    types = {"Person": parse_types.parse_person, "Possessive": parse_types.parse_possessive,
             "Pronoun": parse_types.parse_pronoun}
    step = parse.compile("{name:Person} sees {her:Possessive} run in {her:Possessive} conversation, "
                         "as {she:Pronoun} asked", extra_types=types)
    assert step.parse("Alice sees her run in her conversation, as she asked")["name"] == "Alice"
    assert step.parse("Bob sees his run in his conversation, as he asked")["name"] == "Bob"
    assert step.parse("Sam sees their run in their conversation, as they asked")["name"] == "Sam"
    assert step.parse("Bob sees his run in her conversation, as he asked") is None
