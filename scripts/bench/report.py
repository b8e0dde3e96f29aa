#!/usr/bin/env python3
"""Reads loadcli's JSON reports for the bench parts (scripts/bench/*.sh).

    report.py field KEY < REPORT
        the value of KEY in the report on stdin
    report.py brief PART RUN REPORT KEY...
        one line, "PART RUN {KEY: value, ...}", for the log of a run
    report.py storm-times REPORT
        "STARTED BACK ANSWERED" for plot-storm.gp: when the lines started
        (Unix time), and when the first wave had every client back and
        every line answered (seconds since the lines started; 1e9, far off
        the figure's right edge, if it never did)
    report.py trickle REPORT
        the figures of a `loadcli trickle` run in one line
    report.py versus SHAPE DIR RUNS
        one line: the median, run by run, of this build's server CPU per
        line over the base build's, in part versus at SHAPE
        (DIR/versus-SHAPE.{base,this}.RUN.json), and every run's figures
"""
import json
import statistics
import sys


def storm_times(report):
    wave = (report["waves"] or [{}])[0]
    loss = wave.get("first_loss_s", 0)

    def at(key):
        return loss + wave[key] if wave.get(key) is not None else 1e9

    return f'{report["started_unix_s"]} {at("reconnected_after_s")} {at("answered_after_s")}'


def trickle(r):
    ms = lambda us: f"{us / 1000:.1f} ms"
    h = r["handshake"]
    figures = (
        f"p50 {ms(h['p50_us'])}, p99 {ms(h['p99_us'])}, max {ms(h['max_us'])}"
        if h["count"] else "no handshake completed"
    )
    return (
        f"{r['addresses']} addresses × {r['sockets_per_address']} sockets: "
        f"{r['completed']} of {r['samples']} handshakes completed ({figures}), "
        f"{r['failed']} failed, {r['timed_out']} timed out"
        + (
            f", server memory {r['server_rss_kib_before'] / 1024:.1f} MiB before, "
            f"{r['server_rss_kib_stalled'] / 1024:.1f} MiB stalled"
            if r.get("server_rss_kib_stalled") else ""
        )
    )


def versus(shape, directory, runs):
    def per_line(build):
        figures = []
        for run in range(1, runs + 1):
            with open(f"{directory}/versus-{shape}.{build}.{run}.json") as f:
                figures.append(json.load(f)["server_cpu_us_per_line"])
        return figures

    base, this = per_line("base"), per_line("this")
    runs_of = lambda figures: ", ".join(f"{x:.2f}" for x in figures)
    # Run by run: the two servers of one run shared the machine's state.
    ratios = sorted(t / b for b, t in zip(base, this))
    return (
        f"{shape}: this ÷ base, run by run, median {statistics.median(ratios):.3f} "
        f"(from {ratios[0]:.2f} to {ratios[-1]:.2f}); "
        f"base {statistics.median(base):.2f} µs per line ({runs_of(base)}), "
        f"this {statistics.median(this):.2f} µs per line ({runs_of(this)})"
    )


def main(argv):
    if argv[:1] == ["field"] and len(argv) == 2:
        print(json.load(sys.stdin)[argv[1]])
    elif argv[:1] == ["brief"] and len(argv) >= 4:
        part, run, path, keys = argv[1], argv[2], argv[3], argv[4:]
        with open(path) as f:
            report = json.load(f)
        print(part, run, {key: report[key] for key in keys})
    elif argv[:1] == ["storm-times"] and len(argv) == 2:
        with open(argv[1]) as f:
            print(storm_times(json.load(f)))
    elif argv[:1] == ["trickle"] and len(argv) == 2:
        with open(argv[1]) as f:
            print(trickle(json.load(f)))
    elif argv[:1] == ["versus"] and len(argv) == 4:
        print(versus(argv[1], argv[2], int(argv[3])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
