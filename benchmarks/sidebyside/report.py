"""The results as a markdown report (absolute numbers and ratios to the two ceilings) and as PNG
plots. Pure functions of the results dictionary ``compare.py`` writes as JSON; matplotlib is
imported only by the plot functions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

CEILINGS = ("raw-memory", "raw-redis")
CEILING_NAMES = {"raw-memory": "raw from memory", "raw-redis": "raw + Redis hop"}


# -- formatting -------------------------------------------------------------------------------

def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_count(value: float | None) -> str:
    """12345.6 -> '12,346'; None or NaN -> '—'."""
    return "—" if _missing(value) else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    """Milliseconds with 2 significant decimals below 10, 1 below 100, none above."""
    if _missing(value):
        return "—"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_us(value: float | None) -> str:
    return "—" if _missing(value) else (f"{value:.1f}" if value < 100 else f"{value:,.0f}")


def fmt_kib(value_bytes: float | None) -> str:
    return "—" if _missing(value_bytes) else f"{value_bytes / 1024:.1f}"


def fmt_ratio(value: float | None) -> str:
    """0.4213 -> '0.42×', 12.5 -> '12.5×', None -> '—'."""
    if _missing(value):
        return "—"
    if value >= 10:
        return f"{value:.1f}×"
    return f"{value:.2f}×"


def ratio(value: float | None, ceiling: float | None) -> float | None:
    """value / ceiling, None when either is missing or the ceiling is not positive."""
    if _missing(value) or _missing(ceiling) or ceiling <= 0:
        return None
    return value / ceiling


def table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A markdown table; ``align`` per column: 'l' or 'r' (default: first left, the rest right)."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- looking things up ------------------------------------------------------------------------

def find_run(system: dict[str, Any], mode: str, clients: int, rate: float | None = None) -> dict[str, Any] | None:
    for run in system.get("runs", []):
        if run["mode"] == mode and run["clients"] == clients and (rate is None or run.get("rate") == rate):
            return run
    return None


def memory_per_conn(system: dict[str, Any], connections: int | None,
                    systems: dict[str, Any] | None = None) -> float | None:
    """Bytes per idle connection at ``connections``; from another system of the same memory family
    (the same server) when this one did not measure it and ``systems`` is given."""
    candidates = [system]
    family = system.get("memory_family")
    if systems and family:
        candidates += [s for s in systems.values() if s.get("memory_family") == family and s is not system]
    for candidate in candidates:
        for entry in candidate.get("memory", []):
            if entry["connections"] == connections:
                return entry["per_connection_bytes"]
    return None


def order(results: dict[str, Any]) -> list[str]:
    return list(results.get("systems", {}))


def saturation_clients(results: dict[str, Any]) -> int:
    plan = results.get("meta", {}).get("plan", {})
    counts = plan.get("saturation_clients") or [100]
    return max(counts)


def _check(run: dict[str, Any] | None) -> str:
    if run is None:
        return "—"
    problems = []
    for key, word in (("lost", "lost"), ("duplicates", "dup"), ("reordered", "reordered"), ("unknown", "unknown")):
        if run.get(key):
            problems.append(f"{run[key]:,} {word}")
    if run.get("surplus"):
        problems.append(f"{run['surplus']:,} beyond the published count")
    if run.get("closed"):
        problems.append(f"{run['closed']} closed")
    if run.get("unfinished_runs"):
        problems.append(f"{run['unfinished_runs']} runs unfinished")
    if run.get("unanswered_starts"):
        problems.append(f"{run['unanswered_starts']} starts unanswered")
    return "ok" if not problems else ", ".join(problems)


# -- the report -------------------------------------------------------------------------------

def render_markdown(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    systems = results.get("systems", {})
    plan = meta.get("plan", {})
    sat_n = saturation_clients(results)
    out: list[str] = ["# Side by side: event delivery over WebSocket", ""]
    out += _header(meta)

    # throughput
    out += [f"## Delivered events/s at saturation ({sat_n:,} clients)", "",
            "The publisher sends as fast as the system takes events, one stream per client; delivered "
            "events/s is counted at the clients, from the first publish to the last delivery.", ""]
    rows = []
    for key in order(results):
        s = systems[key]
        run = find_run(s, "saturation", sat_n)
        if run is None:
            rows.append([_name(s), "—", "—", "—", "—", "—", "—", "—", s.get("error") and "not run" or "—"])
            continue
        rows.append([_name(s), fmt_count(run["delivered_per_s"]), fmt_count(run["published_per_s"]),
                     _latency_pair(run), fmt_count(run.get("bytes_per_event")), fmt_us(run.get("cpu_us_per_event")),
                     *(fmt_ratio(ratio(run["delivered_per_s"], _sat(systems.get(c), sat_n))) for c in CEILINGS),
                     _check(run)])
    out += [table(["System", "Delivered/s", "Published/s", "Latency p50 / p99 ms", "Bytes/event", "CPU µs/event",
                   "× raw from memory", "× raw + Redis hop", "Check"], rows,
                  ["l", "r", "r", "r", "r", "r", "r", "r", "l"]), ""]

    # latency
    rates, counts = plan.get("rates", []), plan.get("clients", [])
    if rates and counts:
        out += ["## Latency at fixed rates: p50 / p99 (ms)", "",
                "The publisher keeps the total rate, spread evenly over the clients' streams. A cell also "
                "shows the delivered rate when it fell short of the target by more than 5%, and any loss.", ""]
        header = ["System"] + [f"{r:,}/s, {n:,} client{'s' if n != 1 else ''}" for r in rates for n in counts]
        rows = []
        for key in order(results):
            s = systems[key]
            rows.append([_name(s)] + [_latency_cell(find_run(s, "rate", n, r), r) for r in rates for n in counts])
        out += [table(header, rows), ""]

    # memory
    levels = plan.get("memory_connections", [])
    if levels:
        out += ["## Memory per idle connection", "",
                "RSS growth of the processes holding the connections, divided by the connections (each "
                "connected, authenticated where the system does, and joined to its stream). Kernel socket "
                "buffers are not in it.", ""]
        rows = []
        for key in order(results):
            s = systems[key]
            if not s.get("memory"):
                continue
            cells = [fmt_kib(memory_per_conn(s, n)) for n in levels]
            first = levels[0]
            cells += [fmt_ratio(ratio(memory_per_conn(s, first), memory_per_conn(systems.get(c, {}), first)))
                      for c in CEILINGS]
            rows.append([_name(s, s.get("memory_label")), *cells, s["memory"][0].get("measured", "")])
        out += [table(["System"] + [f"KiB @ {n:,}" for n in levels]
                      + [f"× raw from memory @ {levels[0]:,}", f"× raw + Redis hop @ {levels[0]:,}", "Processes"],
                      rows, ["l"] + ["r"] * (len(levels) + 2) + ["l"]), ""]

    # CPU
    out += [f"## CPU per delivered event at saturation ({sat_n:,} clients)", "",
            "CPU seconds (user + system) of each process during the run, per delivered event. The "
            "publisher process and the client harness are not counted (the raw-memory server is its own "
            "publisher; our agent path's publishers are the workers, which are counted).", ""]
    rows = []
    for key in order(results):
        s = systems[key]
        run = find_run(s, "saturation", sat_n)
        if run is None or not run.get("cpu_s"):
            continue
        delivered = max(1, run["delivered"])
        parts = ", ".join(f"{name} {fmt_us(sec / delivered * 1e6)}" for name, sec in run["cpu_s"].items())
        extra = run.get("publisher_cpu_s")
        pub = fmt_us(extra / delivered * 1e6) if extra is not None else "—"
        rows.append([_name(s), fmt_us(run.get("cpu_us_per_event")), parts, pub])
    out += [table(["System", "µs/event", "By process (µs/event)", "Publisher µs/event"], rows,
                  ["l", "r", "l", "r"]), ""]

    # ratios
    out += ["## Against the ceilings", "",
            "Each system's number divided by the ceiling's: throughput above 1× is faster than the ceiling; "
            "latency, memory and CPU above 1× cost more.", ""]
    rate_ref = 5000 if 5000 in rates else (rates[-1] if rates else None)
    n_ref = 100 if 100 in counts else (counts[-1] if counts else None)
    rows = []
    for key in order(results):
        s = systems[key]
        if s.get("kind") == "ceiling":
            continue
        run = find_run(s, "saturation", sat_n)
        lat = find_run(s, "rate", n_ref, rate_ref) if rate_ref else None
        cells = []
        for c in CEILINGS:
            ceiling = systems.get(c, {})
            cells.append(fmt_ratio(ratio(run and run["delivered_per_s"], _sat(ceiling, sat_n))))
        for c in CEILINGS:
            ceiling_lat = find_run(systems.get(c, {}), "rate", n_ref, rate_ref) if rate_ref else None
            cells.append(fmt_ratio(ratio(_p(lat, "p99"), _p(ceiling_lat, "p99"))))
        mem_n = levels[0] if levels else None
        for c in CEILINGS:
            cells.append(fmt_ratio(ratio(memory_per_conn(s, mem_n, systems),
                                         memory_per_conn(systems.get(c, {}), mem_n))) if mem_n else "—")
        for c in CEILINGS:
            ceiling_run = find_run(systems.get(c, {}), "saturation", sat_n)
            cells.append(fmt_ratio(ratio(run and run.get("cpu_us_per_event"),
                                         ceiling_run and ceiling_run.get("cpu_us_per_event"))))
        rows.append([_name(s), *cells])
    short = ["mem", "hop"]
    header = (["System"] + [f"throughput vs {x}" for x in short]
              + [f"p99 @ {rate_ref:,}/s, {n_ref:,} clients vs {x}" if rate_ref else f"p99 vs {x}" for x in short]
              + [f"memory/conn vs {x}" for x in short] + [f"CPU/event vs {x}" for x in short])
    out += [table(header, rows), "",
            "(mem: raw websockets from memory; hop: raw websockets behind one Redis pub/sub hop.)", ""]

    # agent path, one run
    singles = [(key, entry) for key in order(results) for entry in systems[key].get("agent_single", [])]
    if singles:
        out += ["## Agent path: one run alone", "",
                "One client, one run at a time, through HAProxy: events/s while the run's events arrive "
                "(first to last), and from `start_agent` to its `agent_completed`.", ""]
        rows = [[f"`{entry['script']}`", fmt_count(entry["events"]), fmt_count(entry["stream_events_per_s"]),
                 fmt_count(entry["end_to_end_events_per_s"]), fmt_ms(entry.get("latency_ms", {}).get("p50")),
                 fmt_ms(entry.get("latency_ms", {}).get("p99")), str(entry.get("repeats", 1))]
                for _key, entry in singles]
        out += [table(["Script", "Events", "Events/s (first to last)", "Events/s (start to end)",
                       "Latency p50 ms", "p99 ms", "Runs (median)"], rows), ""]

    # notes
    notes = [f"- {line}" for line in meta.get("notes", [])]
    notes += [f"- {who}: {note}" for note, who in grouped_notes(results)]
    for key in order(results):
        s = systems[key]
        if s.get("error"):
            notes.append(f"- {_name(s)}: **not (fully) run**: {s['error']}")
    if notes:
        out += ["## Notes", "", *notes, ""]
    return "\n".join(out).rstrip() + "\n"


def _header(meta: dict[str, Any]) -> list[str]:
    machine = meta.get("machine", {})
    plan = meta.get("plan", {})
    lines = []
    if meta.get("interrupted"):
        lines += ["> **Interrupted**: the run was stopped before the end; only what was measured is here.", ""]
    if meta.get("quick"):
        lines += ["> **Smoke run** (`--quick`): short runs, few clients. The numbers show that every system "
                  "runs end to end; they are not a comparison.", ""]
    if meta.get("command"):
        lines += [f"Command: `{meta['command']}`", ""]
    facts = [f"{machine.get('cores', '?')} cores", machine.get("cpu", ""), f"{machine.get('memory_gib', '?')} GiB",
             f"Python {machine.get('python', '?')}", machine.get("platform", "")]
    lines += [f"Machine: {', '.join(f for f in facts if f)}."]
    if machine.get("load_before") is not None:
        lines += [f"Load average before the run: {', '.join(f'{x:.2f}' for x in machine['load_before'])}."]
    if meta.get("started"):
        took = meta.get("elapsed_s")
        lines += [f"Run: {meta['started']}" + (f", {took / 60:.1f} minutes." if took else ".")]
    if plan:
        lines += [f"Each measurement: {plan.get('duration_s')} s of publishing, events of about "
                  f"{plan.get('event_bytes')} bytes (ours: its envelope), one stream per client, "
                  "permessage-deflate off, one client harness for every system."]
    versions = meta.get("versions", {})
    if versions:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + "."]
    return lines + [""]


def grouped_notes(results: dict[str, Any]) -> list[tuple[str, str]]:
    """Each distinct system note once, with the systems it applies to: [(note, 'a, b'), ...]."""
    seen: dict[str, list[str]] = {}
    for key in order(results):
        for note in results["systems"][key].get("notes", []):
            seen.setdefault(note, []).append(key)
    return [(note, ", ".join(keys)) for note, keys in seen.items()]


def _name(system: dict[str, Any], label: str | None = None) -> str:
    label = label or system.get("label", system.get("key", "?"))
    return f"**{label}**" if system.get("kind") == "ours" else label


def _sat(system: dict[str, Any] | None, clients: int) -> float | None:
    run = find_run(system or {}, "saturation", clients)
    return run["delivered_per_s"] if run else None


def _p(run: dict[str, Any] | None, name: str) -> float | None:
    return (run or {}).get("latency_ms", {}).get(name)


def _latency_pair(run: dict[str, Any]) -> str:
    return f"{fmt_ms(_p(run, 'p50'))} / {fmt_ms(_p(run, 'p99'))}"


def _latency_cell(run: dict[str, Any] | None, target: float) -> str:
    if run is None:
        return "—"
    cell = _latency_pair(run)
    extra = []
    if run.get("delivered_per_s", 0) < 0.95 * target:
        extra.append(f"{fmt_count(run.get('delivered_per_s'))}/s")
    check = _check(run)
    if check != "ok":
        extra.append(check)
    return cell + (f" ({'; '.join(extra)})" if extra else "")


# -- plots ------------------------------------------------------------------------------------

KIND_COLOURS = {"ceiling": "#9e9e9e", "ours": "#1f77b4", "peer": "#ff7f0e"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_throughput(results: dict[str, Any], path: Path) -> bool:
    """Bar chart of delivered events/s at saturation; False when there is nothing to plot."""
    systems = results.get("systems", {})
    n = saturation_clients(results)
    bars = [(s.get("label", k), _sat(s, n), s.get("kind", "peer")) for k, s in systems.items()]
    bars = [b for b in bars if b[1]]
    if not bars:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(bars) + 1.5))
    labels = [b[0] for b in bars][::-1]
    values = [b[1] for b in bars][::-1]
    ax.barh(labels, values, color=[KIND_COLOURS.get(b[2], "#555") for b in bars][::-1])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=9)
    ax.set_xlabel("delivered events/s")
    ax.set_title(f"Delivered events/s at saturation, {n:,} clients" + (" (smoke run)" if _quick(results) else ""))
    ax.set_xlim(0, max(values) * 1.18)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_latency_cdf(results: dict[str, Any], rate: float, path: Path) -> bool:
    """Latency CDFs at ``rate`` events/s, one panel per client count, one line per system."""
    systems = results.get("systems", {})
    counts = results.get("meta", {}).get("plan", {}).get("clients", [])
    panels = [n for n in counts if any(find_run(s, "rate", n, rate) for s in systems.values())]
    if not panels:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(max(12.0, 5.2 * len(panels)), 4.6), squeeze=False)
    columns = 3 if len(panels) < 3 else 4
    for ax, n in zip(axes[0], panels, strict=True):
        for key, s in systems.items():
            run = find_run(s, "rate", n, rate)
            if not run or not run.get("cdf"):
                continue
            xs = [max(p[0], 1e-3) for p in run["cdf"]]
            ys = [p[1] for p in run["cdf"]]
            style = "-" if s.get("kind") != "ceiling" else "--"
            width = 2.2 if s.get("kind") == "ours" else 1.3
            ax.plot(xs, ys, style, linewidth=width, label=s.get("label", key))
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log)")
        ax.set_ylabel("fraction of events")
        ax.set_ylim(0, 1.005)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{rate:,.0f} events/s, {n:,} client{'s' if n != 1 else ''}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=min(columns, len(labels)), fontsize=8, frameon=False)
    fig.suptitle("Latency CDF" + (" (smoke run)" if _quick(results) else ""))
    fig.tight_layout(rect=(0, 0.02 + 0.045 * math.ceil(len(labels) / columns), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _quick(results: dict[str, Any]) -> bool:
    return bool(results.get("meta", {}).get("quick"))
