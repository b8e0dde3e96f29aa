#!/usr/bin/env python3
"""Summarises bench-results/ (written by scripts/bench.sh) as the tables in
BENCHMARKS.md: min-max over the runs, and nea/baseline ratios per run."""
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
