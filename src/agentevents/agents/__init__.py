"""Agents: the registry, the context an agent runs with, the built-in and scripted agents."""
