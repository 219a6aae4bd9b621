"""The side-by-side benchmark's report: number formats, ratios, the markdown tables; and the
pure parts of the workload (the publisher's lanes, the agent path's paced scripts)."""

import math

from sidebyside import pacing, report
from sidebyside.systems import MAX_STEPS, THINKING_RATE, paced_steps, pairs_for


def run(mode, clients, delivered_per_s, rate=None, p50=1.0, p99=2.0, cpu=10.0, **extra):
    out = {"mode": mode, "clients": clients, "rate": rate, "delivered_per_s": delivered_per_s,
           "published_per_s": delivered_per_s, "delivered": 1000, "published": 1000, "lost": 0,
           "duplicates": 0, "reordered": 0, "unknown": 0, "gaps": 0, "ok": True, "bytes_per_event": 256,
           "latency_ms": {"p50": p50, "p99": p99}, "cpu_us_per_event": cpu,
           "cpu_s": {"server": cpu * 1000 / 1e6}, "cdf": [[p50, 0.5], [p99, 1.0]]}
    out.update(extra)
    return out


def results():
    def system(key, kind, sat, p99, mem, cpu, family=None):
        return {"key": key, "label": key, "kind": kind, "memory_family": family or key, "notes": [],
                "runs": [run("saturation", 100, sat, cpu=cpu), run("rate", 100, 5000, rate=5000, p99=p99)],
                "memory": [{"connections": 1000, "per_connection_bytes": mem, "measured": "server"}] if mem else []}

    systems = {
        "raw-memory": system("raw-memory", "ceiling", 100_000, 2.0, 10 * 1024, 20.0),
        "raw-redis": system("raw-redis", "ceiling", 50_000, 4.0, 12 * 1024, 40.0),
        "ours-direct": system("ours-direct", "ours", 25_000, 8.0, 30 * 1024, 80.0, family="ours"),
        "ours-haproxy": system("ours-haproxy", "ours", 20_000, 10.0, None, 100.0, family="ours"),
    }
    systems["ours-direct"]["notes"] = ["same note"]
    systems["ours-haproxy"]["notes"] = ["same note"]
    return {"meta": {"quick": True, "command": "benchmarks/compare.py --quick",
                     "machine": {"cores": 2, "python": "3.11.7"},
                     "plan": {"rates": [5000], "clients": [100], "saturation_clients": [100],
                              "memory_connections": [1000], "duration_s": 1.0, "event_bytes": 256}},
            "systems": systems}


def test_formats():
    assert report.fmt_count(12345.6) == "12,346"
    assert report.fmt_count(None) == "—"
    assert report.fmt_count(math.nan) == "—"
    assert report.fmt_ms(0.1234) == "0.12"
    assert report.fmt_ms(12.34) == "12.3"
    assert report.fmt_ms(1234.5) == "1,234"
    assert report.fmt_ratio(0.4213) == "0.42×"
    assert report.fmt_ratio(12.5) == "12.5×"
    assert report.fmt_kib(2048) == "2.0"


def test_ratio_needs_both_numbers_and_a_positive_ceiling():
    assert report.ratio(25, 100) == 0.25
    assert report.ratio(None, 100) is None
    assert report.ratio(5, 0) is None
    assert report.ratio(5, math.nan) is None


def test_table_layout():
    text = report.table(["a", "b"], [["x", "1"]])
    assert text.splitlines() == ["| a | b |", "| :--- | ---: |", "| x | 1 |"]


def row(markdown, name):
    return next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))


def test_markdown_has_absolute_numbers_and_ratios_to_both_ceilings():
    text = report.render_markdown(results())
    assert "Smoke run" in text and "`benchmarks/compare.py --quick`" in text
    saturation = row(text, "**ours-direct**")  # the first table's row
    assert "25,000" in saturation and "0.25×" in saturation and "0.50×" in saturation and "| ok |" in saturation
    section = text.split("## Against the ceilings", 1)[1]
    ours = row(section, "**ours-haproxy**")
    cells = [c.strip() for c in ours.strip("|").split("|")]
    # throughput vs mem, vs hop; p99 vs mem, vs hop; memory (shared with ours-direct) vs mem, vs hop; CPU
    assert cells[1:] == ["0.20×", "0.40×", "5.00×", "2.50×", "3.00×", "2.50×", "5.00×", "2.50×"]
    assert "| raw-memory |" not in section  # the ceilings are not compared with themselves


def test_latency_cell_flags_shortfall_and_loss():
    short = run("rate", 100, 3000, rate=5000, lost=7, ok=False)
    assert report._latency_cell(short, 5000) == "1.00 / 2.00 (3,000/s; 7 lost)"
    assert report._latency_cell(run("rate", 100, 4990, rate=5000), 5000) == "1.00 / 2.00"
    assert report._latency_cell(None, 5000) == "—"


def test_notes_are_listed_once_with_their_systems_and_failures_are_reported():
    data = results()
    data["systems"]["raw-redis"]["error"] = "RuntimeError: boom"
    text = report.render_markdown(data)
    assert text.count("same note") == 1
    assert "- ours-direct, ours-haproxy: same note" in text
    assert "not (fully) run**: RuntimeError: boom" in text


def test_missing_measurements_render_as_dashes():
    data = results()
    data["systems"]["raw-redis"]["runs"] = []
    text = report.render_markdown(data)
    assert "—" in row(text, "raw-redis")


def test_lanes_split_streams_round_robin_and_keep_each_stream_in_one_lane():
    streams = [f"s{i}" for i in range(130)]
    groups = pacing.lanes(streams, max_lanes=64)
    assert len(groups) == 64
    assert sorted(s for g in groups for s in g) == sorted(streams)
    assert pacing.lanes(["only"]) == [["only"]]


def test_due_counts_the_events_a_lane_owes():
    assert pacing.due(0.0, 1000) == 1
    assert pacing.due(0.0105, 1000) == 11
    assert pacing.due(-1, 1000) == 0


def test_paced_scripts_think_within_the_throttle_and_batch_errors_above_it():
    steps, kind = paced_steps(10, 3, pairs=50)
    assert kind == "agent_thinking"
    assert steps[:2] == [{"think": "t"}, {"sleep": 0.1}] and len(steps) == 60
    steps, kind = paced_steps(5000, 3, pairs=50)
    assert kind == "agent_error"
    assert steps[0] == {"repeat": 300, "step": {"error": {"code": "bench", "message": "m"}}}
    assert steps[1] == {"sleep": 0.06} and len(steps) == 100
    steps, kind = paced_steps(THINKING_RATE * 2, 1, pairs=50)
    assert kind == "agent_error" and steps[0] == {"error": {"code": "bench", "message": "m"}}


def test_paced_scripts_cover_the_duration_with_few_steps():
    for rate, clients in ((1000, 1), (5000, 1), (10, 100), (50, 100), (1, 1000), (5, 1000)):
        steps, _ = paced_steps(rate, 3, pairs_for(clients))
        assert len(steps) <= 2 * pairs_for(clients) <= MAX_STEPS
        per_pair = steps[0].get("repeat", 1)
        assert len(steps) // 2 * per_pair / rate >= 3 - 1e-9  # events enough for the whole window
        assert abs(steps[1]["sleep"] - per_pair / rate) < 1e-6  # at the rate asked for
    assert pairs_for(1) == 50 and pairs_for(100) == 4 and pairs_for(1000) == 2
