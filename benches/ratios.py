#!/usr/bin/env python3
"""Prints tower_shield ÷ anchor for every criterion group that ran both, from target/criterion.

Usage: python3 benches/ratios.py [prefix]   (prefix filters groups, e.g. limiter_)
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
prefix = sys.argv[1] if len(sys.argv) > 1 else ""
rows = []
for group in sorted(root.iterdir() if root.exists() else []):
    if not group.is_dir() or not group.name.startswith(prefix):
        continue
    medians = {}
    for bench in group.iterdir():
        est = bench / "new" / "estimates.json"
        if est.exists():
            medians[bench.name] = json.loads(est.read_text())["median"]["point_estimate"]
    ours = medians.pop("tower_shield", None)
    for anchor, theirs in sorted(medians.items()):
        if ours is not None:
            rows.append((group.name, ours, anchor, theirs, ours / theirs))
print(f"| case | tower_shield (ns) | anchor | anchor (ns) | ratio |")
print(f"|---|---|---|---|---|")
for name, ours, anchor, theirs, ratio in rows:
    print(f"| {name} | {ours:.1f} | {anchor} | {theirs:.1f} | {ratio:.2f} |")
