#!/usr/bin/env python3
"""Count TAP test cases over Meson test logs and print 'N passed, N failed'.

A test program that failed (crash, timeout, non-zero exit) without reporting a failing case
counts as one failed case, so a crash can never hide. Exit status 1 if anything failed."""
import json
import re
import sys

passed = failed = 0
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        print(f"count_tap: {path}: {e}")
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        rec = json.loads(line)
        out = rec.get("stdout", "") or ""
        p = len(re.findall(r"^ok \d+", out, re.M))
        f = len(re.findall(r"^not ok \d+", out, re.M))
        if rec.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL") and f == 0:
            f = 1
            print(f"count_tap: {path}: {rec.get('name')} ended {rec.get('result')} without a failing case")
        passed += p
        failed += f
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
