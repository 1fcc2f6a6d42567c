#!/usr/bin/env python3
"""Prints Markdown tables from criterion's results: for every benchmark
group, each function's throughput and its ratio to a baseline function
measured in the same run.

    scripts/bench_table.py PREFIX [BASELINE ...]

PREFIX selects groups (e.g. "mask", "decode", "encode"); each BASELINE
(default: memcpy) adds a ratio column: wsproto's rate over that function's.
The baseline "fastest-peer" is the fastest other library in each group
(not memcpy or the naive reference), named in the cell. Reads
target/criterion/*/*/new/.
"""
import json
import pathlib
import sys

root = pathlib.Path("target/criterion")
prefix = sys.argv[1] if len(sys.argv) > 1 else ""
baselines = sys.argv[2:] or ["memcpy"]
NOT_PEERS = {"memcpy", "memcpy_reused", "naive"}  # baselines, not libraries


def size_key(name):
    digits = "".join(c for c in name.split("_")[-1] if c.isdigit())
    return (name.rsplit("_", 1)[0] if "_" in name else "", int(digits or 0))


groups = {}
for est in root.glob("*/*/new/estimates.json"):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    group = bench["group_id"]
    if not group.startswith(prefix):
        continue
    function = bench.get("function_id") or bench.get("value_str")
    ns = json.loads(est.read_text())["median"]["point_estimate"]
    tp = bench.get("throughput") or {}
    groups.setdefault(group, {})[function] = (ns, tp)

functions = []
for g in groups.values():
    for f in g:
        if f not in functions:
            functions.append(f)

def rate(ns, tp):
    if "Bytes" in tp:
        return tp["Bytes"] / ns  # GB/s (bytes per ns)
    if "Elements" in tp:
        return tp["Elements"] / ns * 1e3  # million elements per second
    return 1 / ns

unit = "GB/s" if any("Bytes" in tp for g in groups.values() for _, tp in g.values()) else "M msgs/s"
header = ["group"] + [f"{f} ({unit})" for f in functions] + [f"wsproto / {b}" for b in baselines]
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for name in sorted(groups, key=lambda n: (n.split("/")[1].rsplit("_", 1)[0] if "_" in n else "", int("".join(c for c in n.split("/")[-1].split("_")[-1] if c.isdigit()) or 0))):
    g = groups[name]
    row = [name]
    for f in functions:
        row.append(f"{rate(*g[f]):.2f}" if f in g else "–")
    for b in baselines:
        if b == "fastest-peer":
            peers = {f: v for f, v in g.items() if not f.startswith("wsproto") and f not in NOT_PEERS}
            if "wsproto" in g and peers:
                best = min(peers, key=lambda f: peers[f][0])
                row.append(f"{peers[best][0] / g['wsproto'][0]:.2f}x ({best})")
            else:
                row.append("–")
        elif "wsproto" in g and b in g:
            row.append(f"{g[b][0] / g['wsproto'][0]:.2f}x")
        else:
            row.append("–")
    print("| " + " | ".join(row) + " |")
