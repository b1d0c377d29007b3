#!/usr/bin/env python3
"""Per-100-nm-z-bin precision of a 3D localization CSV against the simulator's truth CSV (stdlib only): matches each
localization to the nearest true emitter of its frame within 100 nm laterally, then prints a Markdown table of
z RMSE / sqrt(mean CRLB_z), lateral RMSE / sqrt(mean CRLB), z bias and the share of fits > 5 sqrt(CRLB_z) off in z.
usage: zbins.py LOCS.csv TRUTH.csv [ZMIN ZMAX]"""
import csv
import math
import sys
from collections import defaultdict


def rows(path):
    with open(path) as f:
        r = csv.reader(f)
        head = [h.strip().strip('"') for h in next(r)]
        return [dict(zip(head, map(float, line))) for line in r if line]


locs, truth = rows(sys.argv[1]), rows(sys.argv[2])
zmin, zmax = (float(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 4 else (-500.0, 500.0)
by_frame = defaultdict(list)
for t in truth:
    by_frame[t["frame"]].append(t)
bins = defaultdict(lambda: {"n": 0, "sz": 0.0, "cz": 0.0, "sx": 0.0, "cx": 0.0, "bias": 0.0, "out": 0})
matched = 0
for l in locs:
    best = min(by_frame[l["frame"]], key=lambda t: (t["x [nm]"] - l["x [nm]"]) ** 2 + (t["y [nm]"] - l["y [nm]"]) ** 2, default=None)
    if best is None or math.hypot(best["x [nm]"] - l["x [nm]"], best["y [nm]"] - l["y [nm]"]) > 100:
        continue
    matched += 1
    k = min(int((best["z [nm]"] - zmin) // 100), int((zmax - zmin) // 100) - 1)
    b = bins[k]
    dz = l["z [nm]"] - best["z [nm]"]
    b["n"] += 1
    b["sz"] += dz * dz
    b["cz"] += l["uncertainty_z [nm]"] ** 2
    b["sx"] += (l["x [nm]"] - best["x [nm]"]) ** 2 + (l["y [nm]"] - best["y [nm]"]) ** 2
    b["cx"] += l["uncertainty_x [nm]"] ** 2 + l["uncertainty_y [nm]"] ** 2
    b["bias"] += dz
    b["out"] += abs(dz) > 5 * l["uncertainty_z [nm]"]
print(f"{matched} of {len(truth)} true emitters matched ({len(locs)} localizations)\n")
print("| z bin (nm) | fits | z RMSE (nm) | sqrt(CRLB_z) (nm) | z RMSE / sqrt(CRLB) | lateral RMSE / sqrt(CRLB) | z bias (nm) | > 5 sqrt(CRLB_z) |")
print("|---|---|---|---|---|---|---|---|")
for k in sorted(bins):
    b = bins[k]
    lo = zmin + 100 * k
    print(f"| {lo:.0f}..{lo + 100:.0f} | {b['n']} | {math.sqrt(b['sz'] / b['n']):.1f} | {math.sqrt(b['cz'] / b['n']):.1f} | "
          f"{math.sqrt(b['sz'] / b['cz']):.3f} | {math.sqrt(b['sx'] / b['cx']):.3f} | {b['bias'] / b['n']:+.1f} | {b['out']} |")
