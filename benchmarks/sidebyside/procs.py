"""Processes the benchmark starts (each in its own process group, stopped on exit, error or
Ctrl-C), free loopback ports, and CPU and memory readings of any process tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parents[1]

_started: list[subprocess.Popen] = []


def raise_fd_limit() -> int:
    """Soft limit of open files up to the hard limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def peer_env(**extra: str) -> dict[str, str]:
    """The environment of a peer process: ``sidebyside`` importable, nothing of the stack's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH_DIR), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start(args: list[str], log: Path, env: dict[str, str] | None = None,
          stdin: int | None = subprocess.DEVNULL, stdout: int | None = None) -> subprocess.Popen:
    """Start a process in its own session; its output goes to ``log`` (unless ``stdout`` is a pipe)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115  # closed with the process
    proc = subprocess.Popen(args, stdin=stdin, stdout=stdout if stdout is not None else out,
                            stderr=out, env=env or peer_env(), start_new_session=True)
    proc._bench_log = out  # type: ignore[attr-defined]
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGTERM to the process group, SIGKILL after ``timeout_s``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything the process left behind in its group
    log = getattr(proc, "_bench_log", None)
    if log is not None:
        log.close()
    if proc in _started:
        _started.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(_started)):
        stop(proc)


def python() -> str:
    return sys.executable


async def wait_port(port: int, proc: subprocess.Popen | None, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        if port_open(port):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout_s:g}s")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server is not installed")
    return found


async def start_redis(folder: Path, name: str) -> tuple[subprocess.Popen, int]:
    """A private redis-server on a free loopback port, no persistence (the peers' bus)."""
    port = free_port()
    data = folder / f"{name}-redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = start([redis_server_binary(), "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                  "--protected-mode", "yes", "--dir", str(data), "--maxclients", "10000", "--daemonize", "no"],
                 folder / f"{name}-redis.log")
    await wait_port(port, proc, f"redis-server for {name}")
    return proc, port


# -- readings --------------------------------------------------------------------------------

def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process, its reaped children, and its live descendants."""
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total
    except psutil.Error:
        return float("nan")


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: tree_cpu_s(pid) for name, pid in pids.items()}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: max(0.0, after[name] - before[name]) for name in before if name in after}


def rss_bytes(pid: int) -> int:
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0
