#!/usr/bin/python3
"""table.py -- print the markdown table of a run.sh results file (JSON lines).

usage: table.py [results.jsonl]      (default: results.jsonl next to this script)

Each line is one process's result: {"impl": "opl"|"torch", "case", "s", "threads", "mode",
"ms_median", "samples_per_s", "peak_rss_mib", "params", ...}. Rows are (case, s, mode, threads,
torch allocator); repeated runs of the same row are combined by their median. Ratios:
samples/s opl/torch (> 1: opl is faster) and peak RSS torch/opl (> 1: opl uses less memory).
Standard library only, so it runs without torch.
"""

import json
import os
import statistics
import sys


def load(path):
    """Parsed result dicts of a JSON-lines file; unparsable lines are reported and skipped."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
                for k in ("impl", "case", "s", "threads", "mode", "ms_median",
                          "samples_per_s", "peak_rss_mib"):
                    r[k]
                rows.append(r)
            except (ValueError, KeyError) as e:
                print("table.py: %s:%d skipped (%s)" % (path, n, e), file=sys.stderr)
    return rows


def variant(r):
    """'opl', 'torch' (PyTorch's default allocator behaviour) or 'torch-warm' (--keep-memory)."""
    if r["impl"] == "torch":
        return "torch-warm" if r.get("keep_memory") else "torch"
    return str(r["impl"])


def med(rs, key):
    """Median of field key over the runs rs, or None without runs."""
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def table(rows):
    """The markdown table (a list of lines) plus notes on mismatched settings."""
    case_order = {"fno1d": 0, "fno2d_time": 1}
    keys = sorted({(r["case"], r["s"], r["mode"], r["threads"]) for r in rows},
                  key=lambda k: (case_order.get(k[0], 9), k[1], k[2] != "train", k[3]))
    out = ["| case | s | mode | threads | torch allocator | opl ms | torch ms "
           "| opl samples/s | torch samples/s | **samples/s opl/torch** "
           "| opl RSS MiB | torch RSS MiB | **RSS torch/opl** |",
           "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for key in keys:
        group = [r for r in rows if (r["case"], r["s"], r["mode"], r["threads"]) == key]
        opl = [r for r in group if variant(r) == "opl"]
        peers = [v for v in ("torch", "torch-warm") if any(variant(r) == v for r in group)]
        for v in peers or [None]:
            tor = [r for r in group if variant(r) == v]
            o_sps, t_sps = med(opl, "samples_per_s"), med(tor, "samples_per_s")
            o_rss, t_rss = med(opl, "peak_rss_mib"), med(tor, "peak_rss_mib")
            alloc = {"torch": "default", "torch-warm": "kept warm", None: "—"}[v]
            out.append("| %s | %d | %s | %d | %s | %s | %s | %s | %s | **%s** | %s | %s | **%s** |" % (
                key[0], key[1], key[2], key[3], alloc,
                fmt(med(opl, "ms_median"), ".1f"), fmt(med(tor, "ms_median"), ".1f"),
                fmt(o_sps, ".2f"), fmt(t_sps, ".2f"), fmt(ratio(o_sps, t_sps), ".2f"),
                fmt(o_rss, ".0f"), fmt(t_rss, ".0f"), fmt(ratio(t_rss, o_rss), ".2f")))
        for field in ("params", "batch", "rollout"):
            vals = {r.get(field) for r in group if r.get(field) is not None}
            if field == "rollout" and key[0] != "fno2d_time":
                continue
            if len(vals) > 1:
                why = ""
                if field == "params" and key[0] == "fno2d_time" and max(vals) - min(vals) == 160:
                    why = " (160 = the reference's four unused BatchNorm2d(20), kept by the torch peer)"
                notes.append("warning: %s s=%d %s threads=%d: the peers disagree on %s: %s%s" % (
                    key[0], key[1], key[2], key[3], field, sorted(vals), why))
    return out, notes


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results.jsonl")
    rows = load(path)
    if not rows:
        print("table.py: no results in %s" % path)
        return 1
    lines, notes = table(rows)
    print("\n".join(lines))
    print()
    print("ms = median wall time of one step (train: forward + loss + backward + Adam; "
          "infer: forward without gradients; fno2d_time: the whole rollout); "
          "samples/s = batch / median step; RSS = the process's peak resident set.")
    for n in notes:
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
