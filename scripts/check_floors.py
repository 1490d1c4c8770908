#!/usr/bin/env python3
"""Check the floors of DESIGN.md on the sources: a file may include (with "...") only headers of its
own floor or below, written from the repository root; core/internal.h is core's own. Tests under
tests/<folder>/ live on that folder's floor; bench/ and cli/ on the top one. Prints every violation
and exits 1 if there is any; run by meson at configure time."""
import os
import re
import sys

FLOOR = {'core': 1, 'solvers': 2, 'pde': 2, 'operators': 3, 'datasets': 3, 'train': 3,
         'cli': 4, 'bench': 4, 'experiments': 4}
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def floor_of(rel):
    parts = rel.split('/')
    if parts[0] == 'tests':
        return FLOOR.get(parts[1], 4) if len(parts) > 2 else 1
    return FLOOR.get(parts[0])


bad = []
for top in list(FLOOR) + ['tests']:
    for dirpath, _, names in os.walk(os.path.join(root, top)):
        for name in names:
            if not name.endswith(('.c', '.h')):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            own = floor_of(rel)
            if own is None:
                continue
            with open(os.path.join(root, rel), encoding='utf-8', errors='replace') as f:
                text = f.read()
            for m in inc_re.finditer(text):
                inc = m.group(1)
                line = text.count('\n', 0, m.start()) + 1
                where = f'{rel}:{line}: "{inc}"'
                if not os.path.isfile(os.path.join(root, inc)):
                    bad.append(f'{where}: not a path from the repository root')
                    continue
                head = inc.split('/')[0]
                if head == 'tests':
                    if not rel.startswith(('tests/', 'bench/')):
                        bad.append(f'{where}: library code includes a test header')
                    continue
                target = FLOOR.get(head)
                if target is None:
                    bad.append(f'{where}: header outside the floors')
                elif target > own:
                    bad.append(f'{where}: floor {own} includes floor {target}')
                elif inc == 'core/internal.h' and not rel.startswith(('core/', 'tests/core/')):
                    bad.append(f'{where}: core/internal.h is private to core/ (use core/par.h)')
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
