#!/usr/bin/env python3
"""Prints a Markdown table of Autobahn results per agent and case group.

    scripts/conformance_table.py [target/autobahn]

Reads every AGENT/index.json under the directory (written by
scripts/autobahn.sh) and counts each group's behaviors.
"""
import json
import pathlib
import sys
from collections import Counter, defaultdict

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/autobahn")
GROUPS = ["1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"]
SHORT = {"OK": "OK", "NON-STRICT": "NS", "INFORMATIONAL": "INFO", "UNIMPLEMENTED": "UNIMPL", "FAILED": "FAILED"}

rows = []
for index in sorted(root.glob("*/index.json")):
    data = json.loads(index.read_text())
    for agent, cases in sorted(data.items()):
        per_group = defaultdict(Counter)
        for case_id, result in cases.items():
            per_group[case_id.split(".")[0]][result["behavior"]] += 1
        cells = []
        for g in GROUPS:
            counts = per_group.get(g)
            if not counts:
                cells.append("–")
                continue
            cells.append(" ".join(f"{n} {SHORT.get(k, k)}" for k, n in sorted(counts.items())))
        rows.append((agent, cells))

print("| agent | " + " | ".join(f"group {g}" for g in GROUPS) + " |")
print("|---|" + "---|" * len(GROUPS))
for agent, cells in rows:
    print(f"| {agent} | " + " | ".join(cells) + " |")
