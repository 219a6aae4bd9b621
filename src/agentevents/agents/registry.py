"""The agent registry: stable names to factories, with the permission each needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Agent


class UnknownAgent(KeyError):
    pass


class AgentFactoryError(Exception):
    """An agent could not be created; the run gets an error event and no agent_started."""


@dataclass(frozen=True)
class AgentSpec:
    name: str
    description: str
    factory: Callable[[dict[str, Any]], Agent]
    permission: str | None = None
    tools: tuple[str, ...] = ()


class AgentRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, AgentSpec] = {}

    def register(self, spec: AgentSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"agent {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def spec(self, name: str) -> AgentSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownAgent(name) from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[AgentSpec]:
        return [self._specs[n] for n in self.names()]

    def create(self, name: str, options: dict[str, Any]) -> Agent:
        spec = self.spec(name)
        try:
            return spec.factory(options)
        except AgentFactoryError:
            raise
        except Exception as exc:
            raise AgentFactoryError(f"{name}: {type(exc).__name__}: {exc}") from exc


def default_registry() -> AgentRegistry:
    from . import builtin, scripted
    registry = AgentRegistry()
    for spec in builtin.SPECS + (scripted.SPEC,):
        registry.register(spec)
    return registry
