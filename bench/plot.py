"""Draws docs/benchmarks.png from the runner's JSON: throughput per workload as a ratio to the
asio reference server, one bar per server. Needs matplotlib (Debian: python3-matplotlib, run with
/usr/bin/python3); bench/run.py calls it and falls back to gnuplot without it.

    /usr/bin/python3 bench/plot.py docs/benchmarks.json docs/benchmarks.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def main(json_path, png_path):
    with open(json_path) as f:
        raw = json.load(f)
    workloads = raw["workloads"]
    summary = raw["summary"]
    servers = [s for s in raw["servers"]
               if any((summary.get(s["name"], {}).get(w) or {}).get("ratio") for w in workloads)]
    width = 0.8 / max(1, len(servers))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for i, server in enumerate(servers):
        ratios = [(summary[server["name"]].get(w) or {}).get("ratio") or 0 for w in workloads]
        positions = [x - 0.4 + width * (i + 0.5) for x in range(len(workloads))]
        bars = ax.bar(positions, ratios, width, label=server["name"])
        ax.bar_label(bars, labels=[f"{r:.2f}" if r else "" for r in ratios], fontsize=6, rotation=90, padding=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads)
    ax.set_ylabel("messages/s, ratio to the asio reference (log scale)")
    ax.set_title(f"Throughput relative to {raw['reference']} (median of {raw['options']['rounds']} rounds; "
                 "missing bar: not run)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
