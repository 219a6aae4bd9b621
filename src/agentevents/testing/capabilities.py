"""The capabilities a backend may declare, and what a scenario needs them for.

A scenario tagged with a capability's name (``@fault_control``) runs only against a target whose
profile declares it; elsewhere it is skipped with the reason ("needs fault_control: kills, stops
or pauses a part of the backend mid-run"), in the console, JUnit and the report. A backend that
implements only docs/protocol.md declares none of them and still runs every untagged scenario.
docs/conformance.md defines each one.
"""

from __future__ import annotations

from collections.abc import Iterable

CAPABILITIES: dict[str, str] = {
    "conformance_agent": "drives the scripted conformance agent and its tools (docs/conformance.md)",
    "reference_agents": "relies on the answers of the reference agents (triage, math, research, data_analyst, team)",
    "approvals": "asks the user to approve a step before the agent goes on",
    "custom_tools": "registers a user's own tool for a run",
    "tls": "connects over wss:// with the target's certificate authority",
    "multi_gateway": "needs two gateways behind one address, to reconnect through the other",
    "fault_control": "kills, stops or pauses a part of the backend mid-run",
    "archive_query": "reads the backend's event archive of a conversation",
    "audit_query": "reads the backend's delivery audit of events",
    "process_stats": "reads a gateway's open connections, file descriptors and memory",
    "token_revocation": "revokes a token while it is in use",
    "source_addresses": "connects from several loopback addresses",
    "callbacks": "lets a tool call an HTTP endpoint the suite serves",
}


def needed(tags: Iterable[str]) -> list[str]:
    """The capabilities a scenario's tags name, in the registry's order."""
    names = {t.lstrip("@") for t in tags}
    return [c for c in CAPABILITIES if c in names]


def missing(tags: Iterable[str], declared: Iterable[str]) -> list[str]:
    have = set(declared)
    return [c for c in needed(tags) if c not in have]


def skip_reason(absent: list[str]) -> str:
    """``needs fault_control: kills, stops or pauses a part of the backend mid-run``."""
    return "; ".join(f"needs {c}: {CAPABILITIES[c]}" for c in absent)


def unknown(names: Iterable[str]) -> list[str]:
    return sorted(set(names) - set(CAPABILITIES))
