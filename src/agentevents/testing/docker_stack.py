"""The compose topology as the stack under test (``-D stack=docker``), controlled through the
Docker SDK: the same components (postgres, redis, gateway1/2, worker1/2, haproxy) can be killed,
stopped, started, restarted, paused and resumed as on the native stack. Scenarios reach these
through ``testing.control.DockerControl``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

PROJECT = "agentevents"
COMPOSE_FILE = Path("docker-compose.yml")


def _client():
    import docker
    return docker.from_env()


def _container(component: str):
    found = _client().containers.list(all=True, filters={
        "label": [f"com.docker.compose.project={PROJECT}", f"com.docker.compose.service={component}"]})
    if not found:
        raise RuntimeError(f"no container for {component!r} in compose project {PROJECT!r}")
    return found[0]


def _healthy() -> bool:
    containers = _client().containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
    if not containers:
        return False
    return all(c.attrs.get("State", {}).get("Health", {}).get("Status", "healthy") == "healthy" for c in containers)


def up(timeout_s: float = 180) -> bool:
    """Bring the compose project up if it is not; True when this call started it."""
    if _healthy():
        return False
    subprocess.run(["docker", "compose", "-p", PROJECT, "-f", str(COMPOSE_FILE), "up", "-d", "--wait"], check=True,
                   timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while not _healthy():
        if time.monotonic() > deadline:
            raise RuntimeError("compose services did not become healthy")
        time.sleep(0.5)
    return True


def down() -> None:
    subprocess.run(["docker", "compose", "-p", PROJECT, "-f", str(COMPOSE_FILE), "down"], check=True)


def control(action: str, component: str) -> None:
    container = _container(component)
    actions = {"kill": container.kill, "stop": container.stop, "start": container.start,
               "restart": container.restart, "pause": container.pause, "resume": container.unpause}
    if action not in actions:
        raise ValueError(f"unknown action {action!r}")
    actions[action]()


def answers(component: str) -> bool:
    """Whether a component's container runs, unpaused, and reports healthy where it has a check."""
    state = _container(component).attrs.get("State", {})
    return bool(state.get("Running")) and not state.get("Paused") \
        and state.get("Health", {}).get("Status", "healthy") == "healthy"
