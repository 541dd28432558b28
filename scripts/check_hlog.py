#!/usr/bin/env python3
"""Reads every `histograms/*.hlog` of a splitbench run with HdrHistogram's own log reader (the
`hdrhistogram` package from PyPI, `hdrh.log.HistogramLogReader`) and checks that the logs hold
what run.json says: per measurement, the per-second `all` intervals add up to its ok answers,
and so do its per-endpoint intervals. Exits 1 on any mismatch.

    pip install hdrhistogram && python3 scripts/check_hlog.py results/<run-id>
"""
import glob
import json
import os
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader


def counts_by_tag(path):
    # The reader decodes each interval into its own histogram; the reference one only sets the
    # value range (microseconds, up to an hour).
    reference = HdrHistogram(1, 3_600_000_000, 3)
    reader = HistogramLogReader(path, reference)
    counts = {}
    while True:
        interval = reader.get_next_interval_histogram()
        if interval is None:
            return counts
        tag = interval.get_tag() if hasattr(interval, "get_tag") else getattr(interval, "tag", None)
        counts[tag] = counts.get(tag, 0) + interval.get_total_count()


def main(run_dir):
    with open(os.path.join(run_dir, "run.json")) as f:
        run = json.load(f)
    ok_totals = [sum(e["ok"] for e in m["endpoints"].values()) for m in run["measurements"]]
    logs = sorted(glob.glob(os.path.join(run_dir, "histograms", "*.hlog")))
    if not logs:
        print(f"{run_dir}: no .hlog files")
        return 1
    failed = 0
    for path in logs:
        counts = counts_by_tag(path)
        per_second = counts.get("all", 0)
        per_endpoint = sum(n for tag, n in counts.items() if tag != "all" and not str(tag).endswith("all_requests"))
        fine = per_second == per_endpoint and per_second in ok_totals
        failed += not fine
        verdict = "ok" if fine else "MISMATCH"
        print(f"{verdict}: {os.path.basename(path)}: {per_second} ok answers per second, {per_endpoint} per endpoint")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
