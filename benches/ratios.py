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
    # `bare` is the wrapped service alone: with it, compare the time each layer adds.
    bare = medians.pop("bare", None)
    for anchor, theirs in sorted(medians.items()):
        if ours is not None:
            rows.append((group.name, ours, anchor, theirs, bare))
print("| case | tower_shield (ns) | anchor | anchor (ns) | ratio | bare (ns) | added-time ratio |")
print("|---|---|---|---|---|---|---|")
for name, ours, anchor, theirs, bare in rows:
    added = "" if bare is None else f"{(ours - bare) / (theirs - bare):.3f}"
    shown_bare = "" if bare is None else f"{bare:.1f}"
    print(f"| {name} | {ours:.1f} | {anchor} | {theirs:.1f} | {ours / theirs:.2f} | {shown_bare} | {added} |")
