"""Side-by-side benchmark: our delivery against two ceilings and two Python peers, one client
harness and one fan-out workload for all of them.

    .venv/bin/pip install -e '.[bench]'      # the peers (or: make bench)
    .venv/bin/python benchmarks/compare.py            # the full run, about 11 minutes
    .venv/bin/python benchmarks/compare.py --quick    # a smoke run, about 2 minutes
    .venv/bin/python benchmarks/compare.py --only raw-memory,ours-direct

Systems (``--only``): raw-memory, raw-redis (the ceilings), ours-direct, ours-haproxy, ours-each (bus path),
ours-agent (agent path), socketio, channels-core, channels-pubsub. Ours needs the native stack
up (``agentevents stack up``; AE_STACK_OFFSET and AE_STACK_DIR choose which stack); the peers
and their private redis-server are started here on free loopback ports and stopped again.

Writes benchmarks/results/latest.md (the tables), latest.json (every number, latency CDFs),
throughput.png and latency_cdf_5000.png (or the highest rate measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sidebyside import procs, report  # noqa: E402
from sidebyside.runner import Plan, Runner, log  # noqa: E402
from sidebyside.systems import SYSTEMS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(terse=True),
            "load_before": list(os.getloadavg())}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory_gib"] = round(kib / 2**20)
    return info


def tool_versions() -> dict[str, str]:
    out = {}
    for name, args in (("redis-server", ["redis-server", "--version"]), ("haproxy", ["haproxy", "-v"])):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            text = subprocess.run(args, capture_output=True, text=True, timeout=5).stdout.split()
            out[name] = next((w.split("=", 1)[1] if "=" in w else w for w in text if w[:1].isdigit() or
                              w.startswith("v=")), "?")
    from importlib.metadata import version
    with contextlib.suppress(Exception):
        out["websockets"] = version("websockets")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes")
    parser.add_argument("--only", help=f"comma-separated systems, of: {', '.join(SYSTEMS)}")
    parser.add_argument("--duration", type=float, help="seconds of publishing per measurement")
    parser.add_argument("--clients", help="client counts, e.g. 1,100,1000")
    parser.add_argument("--rates", help="fixed rates in events/s, e.g. 1000,5000")
    parser.add_argument("--memory", help="idle connection counts, e.g. 1000,10000 (0: skip)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    return parser.parse_args(argv)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip() and int(x) > 0]


def make_plan(args: argparse.Namespace) -> Plan:
    plan = Plan.quick() if args.quick else Plan()
    if args.duration:
        plan.duration_s = args.duration
    if args.clients:
        plan.clients = _ints(args.clients)
        plan.saturation_clients = [n for n in plan.saturation_clients if n in plan.clients] or [max(plan.clients)]
    if args.rates:
        plan.rates = _ints(args.rates)
    if args.memory is not None:
        plan.memory_connections = _ints(args.memory)
    return plan


async def main(args: argparse.Namespace) -> int:
    selected = list(SYSTEMS) if not args.only else [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in selected if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    plan = make_plan(args)
    fds = procs.raise_fd_limit()
    need = max([*plan.memory_connections, *plan.clients, 1]) + 200
    if fds < need:
        raise SystemExit(f"open-file limit {fds} is below the {need} this plan needs (ulimit -n)")
    logs = Path(tempfile.mkdtemp(prefix="ae-bench-"))
    command = " ".join(["benchmarks/compare.py", *map(shlex.quote, sys.argv[1:])])
    started = time.time()
    results: dict = {"meta": {"command": command, "quick": args.quick, "plan": plan.as_dict(),
                              "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                              "machine": machine(), "versions": tool_versions(), "notes": [
                                  "every connection from the same client harness process (asyncio + uvloop), "
                                  "from loopback source addresses 127.0.0.1-8",
                                  "latency: receive time minus the publish time carried in the event "
                                  "(one machine, one clock)",
                                  "the publisher has one publish in flight per stream (at most 64 streams at a "
                                  "time): one stream's rate is bounded by one publish round trip, except where "
                                  "a system's own publisher queues events (ours-direct, ours-haproxy)"]},
               "systems": {}}
    runner = Runner(plan)
    log(f"systems: {', '.join(selected)}; logs of the processes started in {logs}")
    try:
        for key in selected:
            system = SYSTEMS[key](logs)
            out = results["systems"][key] = {"key": key, "label": system.label, "kind": system.kind,
                                             "memory_family": system.memory_family,
                                             "memory_label": system.memory_label or system.label,
                                             "notes": list(system.notes), "runs": [], "memory": []}
            try:
                await runner.run_system(system, out)
            except Exception as exc:  # the other systems still run; the report says what failed
                out["error"] = f"{type(exc).__name__}: {exc}"
                log(f"{key}: FAILED: {out['error']}")
            finally:
                await system.stop()
            results["meta"]["versions"].update(out.get("versions", {}))
    except (asyncio.CancelledError, KeyboardInterrupt):
        results["meta"]["interrupted"] = True
        log(f"interrupted: every process started is stopped; what was measured is in {args.out}")
        raise
    finally:
        procs.stop_all()
        results["meta"]["elapsed_s"] = time.time() - started
        write(results, args.out)
    failed = [k for k, s in results["systems"].items() if s.get("error")]
    if not failed:
        shutil.rmtree(logs, ignore_errors=True)
    log(f"done in {(time.time() - started) / 60:.1f} min; results in {args.out}"
        + (f"; failed: {', '.join(failed)} (process logs in {logs})" if failed else ""))
    return 1 if failed else 0


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "latest.md").write_text(report.render_markdown(results))
    try:
        report.plot_throughput(results, out / "throughput.png")
        rates = results["meta"]["plan"].get("rates") or []
        if rates:
            rate = 5000 if 5000 in rates else max(rates)
            report.plot_latency_cdf(results, rate, out / f"latency_cdf_{rate}.png")
    except ImportError as exc:
        log(f"no plots: {exc} (pip install -e '.[bench]')")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    try:
        import uvloop
        sys.exit(uvloop.run(main(parse_args())))
    except KeyboardInterrupt:
        procs.stop_all()
        sys.exit(130)
