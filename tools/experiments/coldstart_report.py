"""Tables and a plot from tools/experiments/coldstart's runs (standard library only).

usage: coldstart_report.py RUNS OUT --links "1 4" --models "…" --command "…"
"""
import argparse
import json
import os
import statistics

SYSTEMS = [("fetch-then-start", "results.jsonl", "fetch-then-start"), ("overlapped", "results.jsonl", "overlapped"),
           ("hydraserve", "results.jsonl", "hydraserve"), ("hydraserve", "results-cache-hit.jsonl", "hydraserve, cache hit")]
COLORS = ["#7f7f7f", "#ff7f0e", "#1f77b4", "#2ca02c"]


def records(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[1:]


def started_pps(events_path):
    """pp of each instance the run started, in order."""
    if not os.path.exists(events_path):
        return []
    with open(events_path) as f:
        events = [json.loads(line) for line in f if line.strip()]
    return [e["pp"] for e in sorted(events, key=lambda e: e["unix_seconds"]) if e["event"] == "started"]


def fetch_split(events_path):
    """fetch-then-start: seconds to the end of the fetch, and from there to the first token (stage 0's timeline)."""
    if not os.path.exists(events_path):
        return None
    with open(events_path) as f:
        for line in f:
            event = json.loads(line)
            timeline = (event.get("timelines") or [{}])[0]
            if event["event"] == "first_token" and "fetched" in timeline and "first_token" in timeline:
                return timeline["fetched"], timeline["first_token"] - timeline["fetched"]
    return None


def measure(runs, link, model):
    row = {"model": model, "link_gbps": float(link)}
    for system, results, label in SYSTEMS:
        directory = os.path.join(runs, link, model, system)
        path = os.path.join(directory, results)
        if not os.path.exists(path):
            continue
        record = records(path)[0]
        # The cache-hit request is the run's second cold start.
        which = 1 if results.endswith("cache-hit.jsonl") else 0
        pps = started_pps(os.path.join(directory, "events.jsonl"))
        pp = pps[which] if len(pps) > which else None
        row[label] = {"ttft_seconds": record.get("ttft_seconds"), "pp": pp, "status": record["status"], "error": record.get("error")}
        if system == "fetch-then-start":
            row[label]["fetch_then_rest_seconds"] = fetch_split(os.path.join(directory, "events.jsonl"))
    return row


def cell(entry):
    if not entry or entry["ttft_seconds"] is None:
        return "failed" if entry else "—"
    return "%.2f" % entry["ttft_seconds"] + (" (pp=%d)" % entry["pp"] if entry["pp"] else "")


def ratio(row, label, baseline="fetch-then-start"):
    base, other = row.get(baseline), row.get(label)
    if not base or not other or base["ttft_seconds"] is None or other["ttft_seconds"] is None:
        return "—"
    return "%.2f×" % (base["ttft_seconds"] / other["ttft_seconds"])


def bars_svg(title, rows):
    width, height, left, right, top, bottom = 760, 420, 60, 170, 40, 70
    labels = [label for _, _, label in SYSTEMS]
    values = [[(r.get(label) or {}).get("ttft_seconds") or 0 for label in labels] for r in rows]
    high = max([v for vs in values for v in vs] + [1])
    step = next(s for s in [1, 2, 5, 10, 20, 50, 100] if high / s <= 6)
    high = (int(high / step) + 1) * step
    plot_w, plot_h = width - left - right, height - top - bottom
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="24" font-size="15" text-anchor="middle">%s</text>' % (left + plot_w / 2, title)]
    for tick in range(0, int(high) + 1, step):
        y = top + plot_h - tick / high * plot_h
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, y, left + plot_w, y))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%d</text>' % (left - 6, y + 4, tick))
    group = plot_w / max(len(rows), 1)
    bar = group * 0.8 / len(labels)
    for g, (row, vs) in enumerate(zip(rows, values)):
        for s, v in enumerate(vs):
            x = left + g * group + group * 0.1 + s * bar
            h = v / high * plot_h
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' % (x, top + plot_h - h, bar - 1, h, COLORS[s]))
        out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>' % (left + g * group + group / 2, top + plot_h + 16, row["model"]))
    out.append('<text x="16" y="%d" font-size="12" text-anchor="middle" transform="rotate(-90 16 %d)">TTFT of a cold start, seconds</text>'
               % (top + plot_h / 2, top + plot_h / 2))
    for s, label in enumerate(labels):
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>'
                   % (width - right + 12, top + s * 18, COLORS[s], width - right + 30, top + s * 18 + 10, label))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>' % (left, top, plot_w, plot_h))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs")
    parser.add_argument("out")
    parser.add_argument("--links", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--store", default=None)
    args = parser.parse_args()
    store = args.store or os.path.join(os.path.dirname(args.runs), "store")
    rows = []
    for link in args.links.split():
        for model in args.models.split():
            row = measure(args.runs, link, model)
            manifest = os.path.join(store, "models", model + ".json")
            if os.path.exists(manifest):
                with open(manifest) as f:
                    row["bytes"] = sum(chunk["storedBytes"] for chunk in json.load(f)["chunks"])
            rows.append(row)
    lines = ["| model | size GB | link Gbit/s | fetch-then-start, pp=1 s | overlapped, pp=1 s | HydraServe s | HydraServe, cache hit s "
             "| HydraServe vs fetch-then-start | HydraServe vs overlapped | cache hit vs fetch-then-start | fetch-then-start: fetch + the rest s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        split = (row.get("fetch-then-start") or {}).get("fetch_then_rest_seconds")
        lines.append("| %s | %.2f | %g | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row["model"], row.get("bytes", 0) / 1e9, row["link_gbps"], cell(row.get("fetch-then-start")), cell(row.get("overlapped")),
            cell(row.get("hydraserve")), cell(row.get("hydraserve, cache hit")), ratio(row, "hydraserve"),
            ratio(row, "hydraserve", "overlapped"), ratio(row, "hydraserve, cache hit"),
            "%.1f + %.1f" % tuple(split) if split else "—"))
    summaries = []
    for baseline in ["fetch-then-start", "overlapped"]:
        speedups = [row[baseline]["ttft_seconds"] / row["hydraserve"]["ttft_seconds"] for row in rows
                    if (row.get(baseline) or {}).get("ttft_seconds") and (row.get("hydraserve") or {}).get("ttft_seconds")
                    and row.get("bytes", 0) > 2.5e9 and row["link_gbps"] == 1]
        if speedups:
            summaries.append("HydraServe vs %s on the ~3 GB models at 1 Gbit/s: median %.2f× (%s)."
                             % (baseline, statistics.median(speedups), ", ".join("%.2f×" % s for s in speedups)))
    summary = " ".join(summaries) + " One run per cell."
    table = "\n".join(lines)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "coldstart.md"), "w") as f:
        f.write("# Cold-start study\n\nMade by `%s`.\n\n%s\n\n%s\n" % (args.command, table, summary))
    with open(os.path.join(args.out, "coldstart.json"), "w") as f:
        json.dump({"command": args.command, "rows": rows}, f, indent=1, sort_keys=True)
    for link in args.links.split():
        subset = [row for row in rows if row["link_gbps"] == float(link)]
        with open(os.path.join(args.out, "coldstart-%sgbps.svg" % link), "w") as f:
            f.write(bars_svg("Cold-start TTFT, 4 emulated nodes at %s Gbit/s" % link, subset))
    print(table)
    print(summary)


if __name__ == "__main__":
    main()
