"""A user's mistake gets one clear line and a non-zero exit, never a traceback, and nothing starts.

Each case runs the real command in a subprocess; none of them may reach a stack (the unreachable
target is a closed port on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTEVENTS = [sys.executable, "-m", "agentevents.cli"]
BEHAVE = [sys.executable, "-m", "behave", "--no-junit", "-D", "report_html="]
CLOSED = "ws://127.0.0.1:9/ws"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**environment, "AE_STACK_DIR": str(cwd / ".stack"), **env})


def one_line(done: subprocess.CompletedProcess[str], expected: str) -> str:
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip() and not ln.startswith("USING RUNNER")]
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert len(lines) == 1, lines
    assert expected in lines[0], lines[0]
    return lines[0]


def test_token_without_a_stack_says_so(tmp_path):
    done = run([*AGENTEVENTS, "token", "--user", "alice"], tmp_path)
    assert done.returncode == 1
    one_line(done, "the native stack is not up")
    assert not (tmp_path / ".stack").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--tags", "@T001 and"], "bad tag expression '@T001 and'"),
    (["--tags", "@T999"], "no scenario matches @T999"),
    (["-D", "stack=external"], "needs -D ws_url=... and -D jwt_secret=..."),
    (["-D", "stack=bogus"], "unknown -D stack='bogus'"),
    (["-D", "novalue"], "-D takes NAME=VALUE"),
])
def test_spec_usage_errors_exit_2_before_anything_starts(tmp_path, args, expected):
    done = run([*AGENTEVENTS, "spec", *args], ROOT, AE_STACK_DIR=str(tmp_path / ".stack"))
    assert done.returncode == 2, done.stdout + done.stderr
    one_line(done, expected)
    assert not (tmp_path / ".stack").exists()


def test_spec_against_an_unreachable_backend_is_one_line(tmp_path):
    done = run([*AGENTEVENTS, "spec", "--stack", "external", "-D", f"ws_url={CLOSED}", "-D", "jwt_secret=x"], ROOT)
    assert done.returncode == 1
    one_line(done, f"cannot reach {CLOSED}")


@pytest.mark.parametrize(("defines", "expected"), [
    (["stack=external"], "needs -D ws_url=... and -D jwt_secret=..."),
    (["stack=bogus"], "unknown -D stack='bogus'"),
    (["stack=external", f"ws_url={CLOSED}", "jwt_secret=x"], f"cannot reach {CLOSED}"),
])
def test_plain_behave_with_a_bad_target_is_one_line(tmp_path, defines, expected):
    args = [a for d in defines for a in ("-D", d)]
    done = run([*BEHAVE, "-D", f"records={tmp_path}/r.jsonl", *args, "features"], ROOT)
    assert done.returncode == 2, done.stdout + done.stderr
    one_line(done, expected)


def test_every_cli_option_has_help_and_the_description_no_markup():
    from agentevents.cli import build_parser
    parser = build_parser()
    assert "`" not in (parser.description or "")
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [f"{name} {action.dest}" for name, sub in subparsers.choices.items() for action in sub._actions
               if action.dest != "help" and not action.help]
    assert missing == []
