"""A reproducible random fault schedule and the scripts the chaos runs follow (pure logic)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# What a fault does, how often it is drawn, and which components it can hit.
KINDS: dict[str, tuple[int, tuple[str, ...]]] = {
    "kill_gateway": (3, ("gateway1", "gateway2")),
    "kill_worker": (3, ("worker1", "worker2")),
    "restart_redis": (1, ("redis",)),
    "restart_postgres": (1, ("postgres",)),
    "pause_postgres": (2, ("postgres",)),
    "drop_clients": (3, ("clients",)),
}


@dataclass(frozen=True)
class Fault:
    at_s: float        # seconds after the start of the run
    kind: str
    component: str
    hold_s: float = 0  # how long a pause lasts

    def describe(self) -> str:
        hold = f" for {self.hold_s:.1f} s" if self.hold_s else ""
        return f"{self.kind.replace('_', ' ')} ({self.component}){hold} at {self.at_s:.1f} s"


def fault_schedule(seed: int, count: int, window_s: float, kinds: dict[str, tuple[int, tuple[str, ...]]] = KINDS,
                   ) -> list[Fault]:
    """``count`` faults spread over ``window_s`` seconds: evenly spaced slots, each at a random
    moment of its slot, so that faults never pile up and recovery has room between them."""
    rng = random.Random(seed)
    names = list(kinds)
    weights = [kinds[n][0] for n in names]
    slot = window_s / max(count, 1)
    faults = []
    for i in range(count):
        kind = rng.choices(names, weights)[0]
        component = rng.choice(kinds[kind][1])
        hold = round(rng.uniform(0.5, 2.5), 2) if kind.startswith("pause") else 0.0
        faults.append(Fault(round(i * slot + rng.uniform(0.1, 0.6) * slot, 2), kind, component, hold))
    return faults


def run_script(rng: random.Random, index: int) -> dict[str, Any]:
    """A conformance-agent script of 4–20 events over about 0.5–2.5 s: thoughts, short tool calls
    and pauses, then a completion whose result names the run."""
    steps: list[dict[str, Any]] = []
    for i in range(rng.randint(3, 12)):
        choice = rng.random()
        if choice < 0.55:
            steps.append({"think": f"run {index} thought {i}"})
        elif choice < 0.75:
            steps.append({"tool": "echo", "params": {"value": {"run": index, "step": i}}})
        elif choice < 0.9:
            steps.append({"tool": "wait", "params": {"seconds": round(rng.uniform(0.05, 0.3), 2)}})
        else:
            steps.append({"sleep": round(rng.uniform(0.1, 0.8), 2)})
    steps.append({"complete": {"status": "completed", "result": index, "summary": f"chaos run {index}"}})
    return {"steps": steps}
