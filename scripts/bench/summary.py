#!/usr/bin/env python3
"""Summarises bench-results/ (written by scripts/bench/run.sh and its parts)
as the tables in BENCHMARKS.md: min-max over the runs, and nea/baseline
ratios per run.

    python3 scripts/bench/summary.py [DIRECTORY]   # default bench-results
"""
import glob
import json
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "bench-results"


def load(pattern):
    reports = []
    for path in sorted(glob.glob(os.path.join(OUT, pattern))):
        with open(path) as f:
            try:
                reports.append(json.load(f))
            except json.JSONDecodeError:
                print(f"skipped {path}: not a finished report", file=sys.stderr)
    return reports


def span(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)} – {fmt.format(hi)}"


def growth(before, after):
    if not before or after is None:
        return "-"
    return f"{(after - before) / before * 100:+.1f}%"


def compare(name, key):
    base = load(f"{name}.baseline.*.json")
    nea = load(f"{name}.nea.*.json")
    ratios = [n[key] / b[key] for n, b in zip(nea, base) if n.get(key) and b.get(key)]
    return base, nea, ratios


print("| run | baseline CPU µs | nea CPU µs | ratio per run | median ratio |")
print("|---|---|---|---|---|")
for name, key in [
    ("rtt-100x8x32", "server_cpu_us_per_line"),
    ("rtt-100x1x1000", "server_cpu_us_per_line"),
    ("rtt-1x1x32", "server_cpu_us_per_line"),
    ("handshakes", "server_cpu_us_per_handshake"),
    ("handshakes-quiet", "server_cpu_us_per_handshake"),
    ("handshakes-tuned", "server_cpu_us_per_handshake"),
]:
    base, nea, ratios = compare(name, key)
    if not ratios:
        continue
    median = sorted(ratios)[len(ratios) // 2]
    print(
        f"| {name} | {span([b[key] for b in base])} | {span([n[key] for n in nea])} "
        f"| {', '.join(f'{r:.2f}' for r in ratios)} | {median:.2f} |"
    )

print()
print("| one client, 1 in flight | p50 µs | p99 µs | p50 ratio per run | p99 ratio per run |")
print("|---|---|---|---|---|")
base, nea, _ = compare("rtt-1x1x32", "server_cpu_us_per_line")
for label, reports in [("baseline", base), ("nea", nea)]:
    print(
        f"| {label} | {span([r['latency']['p50_us'] for r in reports], '{:.0f}')} "
        f"| {span([r['latency']['p99_us'] for r in reports], '{:.0f}')} | | |"
    )
p50 = [n["latency"]["p50_us"] / b["latency"]["p50_us"] for n, b in zip(nea, base)]
p99 = [n["latency"]["p99_us"] / b["latency"]["p99_us"] for n, b in zip(nea, base)]
print(f"| ratio | | | {', '.join(f'{r:.2f}' for r in p50)} | {', '.join(f'{r:.2f}' for r in p99)} |")

print()
print("| hold | clients | RSS per client KiB | idle RSS KiB | RSS after KiB | after vs idle | anonymous idle → after KiB | lateness p99 µs | max µs | later periods p99 µs | CPU ms | context switches |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for pattern in [
    "hold-0.*.json",
    "hold-100.*.json",
    "hold-0-after.*.json",
    "hold-10000.json",
    "hold-10000-tuned.json",
]:
    for r in load(pattern):
        late = r["lateness"]
        print(
            f"| {pattern.split('.')[0]} | {r['clients']} | {span([r.get('rss_per_client_kib')], '{:.1f}')} "
            f"| {r.get('rss_idle_kib')} | {r.get('rss_after_kib')} "
            f"| {growth(r.get('rss_idle_kib'), r.get('rss_after_kib'))} "
            f"| {r.get('rss_anon_idle_kib')} → {r.get('rss_anon_after_kib')} "
            f"| {late['p99_us']} | {late['max_us']} "
            f"| {r['lateness_later_periods']['p99_us']} | {span([r.get('server_cpu_ms')], '{:.1f}')} "
            f"| {r.get('server_context_switches')} |"
        )

soak = load("soak.json")
if soak:
    s = soak[0]
    print()
    print(
        f"soak: {s['sent']} sent, {s['answered']} answered in order, {s['lost']} lost, "
        f"{s['seconds']:.0f} s; date lateness p99 {s['lateness']['p99_us']} µs, "
        f"max {s['lateness']['max_us']} µs; RSS {s.get('rss_first_kib')} -> {s.get('rss_end_kib')} KiB "
        f"({(s.get('rss_growth') or 0) * 100:+.2f}%)"
    )

# The metrics' cost (PARTS=admin): nea without and with --admin-addr, run by run.
off = load("rtt-admin-off.*.json")
on = load("rtt-admin-on.*.json")
if off and on:
    pairs = [(a["server_cpu_us_per_line"], b["server_cpu_us_per_line"]) for a, b in zip(off, on)]
    ratios = sorted(b / a for a, b in pairs)
    print()
    print("| run | admin off CPU µs/line | admin on CPU µs/line | ratio per run | median ratio |")
    print("|---|---|---|---|---|")
    print(f"| rtt-100x8x32 | {span([a for a, _ in pairs])} | {span([b for _, b in pairs])} | "
          + ", ".join(f"{b / a:.3f}" for a, b in pairs) + f" | {ratios[len(ratios) // 2]:.3f} |")

# The reconnect storm (PARTS=storm): per run, the restart's own times (from
# storm.N.events) and the wave loadcli measured (from storm.N.json).
storms = []
def run_number(path):
    number = os.path.basename(path).split(".")[1]
    return int(number) if number.isdigit() else 0


for path in sorted(glob.glob(os.path.join(OUT, "storm.*.json")), key=run_number):
    events_path = path[: -len(".json")] + ".events"
    try:
        with open(path) as f:
            report = json.load(f)
        with open(events_path) as f:
            events = dict(line.strip().split("=", 1) for line in f if "=" in line)
    except (OSError, json.JSONDecodeError, ValueError):
        print(f"skipped {path}: not a finished run", file=sys.stderr)
        continue
    storms.append((path, report, events))
if storms:
    print()
    print("| run | restart | clients | old server exited after | new server listening after "
          "| every client back after | every pending line answered after | peak handshakes/s "
          "| failed attempts (refused, timed out) | lost | duplicates | gave up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path, r, e in storms:
        term = float(e["TERM_AT"])
        since_term = lambda key: f"{float(e[key]) - term:.2f} s" if key in e else "-"
        for wave in r["waves"] or [{}]:
            def after(key):
                value = wave.get(key)
                return "never" if value is None else f"{value:.2f} s"
            print(
                f"| {os.path.basename(path)} | {e.get('RESTART', 'wait')} | {r['clients']} "
                f"| {since_term('EXIT_AT')} | {since_term('UP_AT')} "
                f"| {after('reconnected_after_s')} | {after('answered_after_s')} "
                f"| {r['peak_handshakes_per_s']:.0f} "
                f"| {r['failed_attempts']} ({r.get('refused_attempts', '-')}, {r.get('timed_out_attempts', '-')}) "
                f"| {r['lost']} | {r['duplicates']} | {r['gave_up']} |"
            )

# Fresh handshakes while many addresses stall theirs (PARTS=stalled-handshakes).
def trickle_key(path):
    parts = os.path.basename(path).split(".")
    return (int(parts[1]), int(parts[2])) if parts[1].isdigit() and parts[2].isdigit() else (0, 0)


trickles = []
for path in sorted(glob.glob(os.path.join(OUT, "stalled-handshakes.*.json")), key=trickle_key):
    with open(path) as f:
        try:
            trickles.append((path, json.load(f)))
        except json.JSONDecodeError:
            print(f"skipped {path}: not a finished report", file=sys.stderr)
if trickles:
    ms = lambda us: f"{us / 1000:.1f}"
    print()
    print("| run | stalled sockets (addresses × per address) | completed | failed | timed out "
          "| p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for path, r in trickles:
        h = r["handshake"]
        figures = (f"{ms(h['p50_us'])} | {ms(h['p99_us'])} | {ms(h['max_us'])}"
                   if h["count"] else "- | - | -")
        print(
            f"| {os.path.basename(path)} | {r['stalled_sockets']} ({r['addresses']} × "
            f"{r['sockets_per_address']}) | {r['completed']} of {r['samples']} | {r['failed']} "
            f"| {r['timed_out']} | {figures} |"
        )
