#!/usr/bin/env python3
"""Draws the README's benchmark picture from a `quando-bench suite --markdown` report.

    python3 scripts/bench_chart.py suite.md docs/bench.svg

One horizontal bar per workload and backend, req/s on a logarithmic axis (the workloads span
from a few to thousands of requests a second), with each bar's p99 beside it. Plain SVG from
the standard library: nothing to install, and the picture is a text file git can diff.
"""

import html
import math
import re
import sys

ROW = re.compile(r"^\| `([^`]+)` \| ([\d,]+) \| ([\d.]+) \| ([\d.]+) \|")
SECTION = re.compile(r"^### (\S+)")
COLORS = {"SQLite": "#3b7dd8", "PostgreSQL": "#e0803a"}


def parse(text):
    """{workload: {backend: (req_per_s, p99_ms)}} and the backends in report order."""
    data, backends, backend = {}, [], None
    for line in text.splitlines():
        section = SECTION.match(line)
        if section:
            backend = section.group(1)
            if backend not in backends:
                backends.append(backend)
            continue
        row = ROW.match(line)
        if row and backend:
            name, rate, _p50, p99 = row.groups()
            data.setdefault(name, {})[backend] = (float(rate.replace(",", "")), float(p99))
    return data, backends


def draw(data, backends, title):
    bar, gap, left, width = 16, 14, 190, 470
    top = 64
    rows = sum(len(by) for by in data.values()) * bar + len(data) * gap
    height = top + rows + 40
    top_rate = max(rate for by in data.values() for rate, _ in by.values())
    decades = max(1, math.ceil(math.log10(max(top_rate, 10))))

    def x(rate):
        return left + width * math.log10(max(rate, 1)) / decades

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 150}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, backend in enumerate(backends):
        color = COLORS.get(backend, "#888")
        out.append(f'<rect x="{left + i * 120}" y="34" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{left + i * 120 + 16}" y="44">{html.escape(backend)}</text>')
    for d in range(decades + 1):
        gx = left + width * d / decades
        out.append(
            f'<line x1="{gx:.1f}" y1="{top - 6}" x2="{gx:.1f}" y2="{top + rows}" stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{gx:.1f}" y="{top + rows + 16}" text-anchor="middle" fill="#555">'
            f"{10 ** d:,}</text>"
        )
    out.append(
        f'<text x="{left + width / 2}" y="{top + rows + 32}" text-anchor="middle" '
        'fill="#555">requests per second (log scale); p99 latency beside each bar</text>'
    )
    y = top
    for name, by in data.items():
        group = len(by) * bar
        out.append(
            f'<text x="{left - 8}" y="{y + group / 2 + 4}" text-anchor="end">'
            f"{html.escape(name)}</text>"
        )
        for backend in backends:
            if backend not in by:
                continue
            rate, p99 = by[backend]
            end = x(rate)
            out.append(
                f'<rect x="{left}" y="{y + 1}" width="{max(end - left, 1):.1f}" '
                f'height="{bar - 2}" fill="{COLORS.get(backend, "#888")}"/>'
            )
            out.append(
                f'<text x="{end + 4:.1f}" y="{y + bar - 4}" fill="#333">'
                f"{rate:,.0f}/s, p99 {p99:,.1f} ms</text>"
            )
            y += bar
        y += gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench_chart.py REPORT.md OUT.svg")
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    data, backends = parse(text)
    if not data:
        sys.exit(f"{sys.argv[1]}: no workload rows (is it a `suite --markdown` report?)")
    events = re.search(r"([\d,]+) events over", text)
    title = "quando-bench suite"
    if events:
        title += f": {events.group(1)} events, 16 connections, 2 cores"
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(draw(data, backends, title))


if __name__ == "__main__":
    main()
