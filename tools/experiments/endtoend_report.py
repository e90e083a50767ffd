"""The end-to-end study's summary from `hydra analyze --json` (standard library only): the goal's
comparison (attainment against the baseline at the highest rate where the baseline attains at
least 40%) and the cost per request of each system.

usage: endtoend_report.py ANALYSIS_JSON TABLE_MD OUT_MD --command "…"
"""
import argparse
import json
import statistics


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("analysis")
    parser.add_argument("table")
    parser.add_argument("out")
    parser.add_argument("--command", required=True)
    parser.add_argument("--baseline", default="fetch-then-start")
    args = parser.parse_args()
    with open(args.analysis) as f:
        analysis = json.load(f)
    overall = [s for s in analysis["summaries"] if s["task"] == "all"]
    lines = ["# End-to-end study", "", "Made by `%s`." % args.command, ""]
    # Attainment per system at each (rate, CV).
    systems = []
    for s in overall:
        if s["label"] not in systems:
            systems.append(s["label"])
    points = sorted({(s["cv"], s["rate"]) for s in overall})
    lines += ["## TTFT-SLO attainment", "", "| CV | rate req/s | " + " | ".join(systems) + " | HydraServe / baseline |",
              "|---|---|" + "---|" * len(systems) + "---|"]
    at = {(s["label"], s["cv"], s["rate"]): s["ttft_slo_attainment"] for s in overall}
    for cv, rate in points:
        cells = ["%.0f%%" % (100 * at[(system, cv, rate)]) if (system, cv, rate) in at else "—" for system in systems]
        base, ours = at.get((args.baseline, cv, rate)), at.get(("hydraserve", cv, rate))
        versus = "%.2f×" % (ours / base) if base and ours is not None else ("∞" if ours else "—")
        lines.append("| %g | %g | %s | %s |" % (cv, rate, " | ".join(cells), versus))
    lines.append("")
    for cv in sorted({cv for cv, _ in points}):
        rates = sorted(rate for c, rate in points if c == cv and (args.baseline, cv, rate) in at)
        if len(rates) < 2:
            continue
        eligible = [rate for rate in rates if at[(args.baseline, cv, rate)] >= 0.4]
        if not eligible:
            lines.append("CV %g: the baseline attains less than 40%% at every rate measured." % cv)
            continue
        rate = max(eligible)
        base, ours = at[(args.baseline, cv, rate)], at.get(("hydraserve", cv, rate))
        lines.append("Goal (CV %g): at %g requests/s, the highest rate where %s attains ≥ 40%% (%.0f%%), HydraServe attains %.0f%%: %.2f× (goal ≥ 1.4×)."
                     % (cv, rate, args.baseline, 100 * base, 100 * ours, ours / base))
    lines.append("")
    if analysis["costs"]:
        lines += ["## Cost", "", "Device memory held (weights as placed plus the KV cache) integrated over each run, per answered request; "
                  "median over the runs.", "", "| system | GB·s per answered request, median | min–max | runs |", "|---|---|---|---|"]
        for system in systems:
            values = [c["gb_seconds_per_completed_request"] for c in analysis["costs"]
                      if c["label"] == system and c.get("gb_seconds_per_completed_request") is not None]
            if values:
                lines.append("| %s | %.2f | %.2f–%.2f | %d |" % (system, statistics.median(values), min(values), max(values), len(values)))
        lines.append("")
    with open(args.table) as f:
        lines += ["## Every run", "", f.read()]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
