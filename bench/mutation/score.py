"""The mutation score per module from mutmut's results: killed / (mutants - equivalent ones).

A mutant listed in `equivalent.txt` (with the reason it cannot change behaviour) is left out;
one that is no longer generated (the code moved on) is reported so the list stays honest.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
MODULES = ["gateway.credentials.keyformat", "gateway.credentials.parse", "gateway.access.authorize", "gateway.access.guard",
           "gateway.ratelimit.memory", "gateway.routing", "gateway.path_readings", "gateway.proxy.headers"]


def equivalents() -> set[str]:
    names = set()
    for line in (HERE / "equivalent.txt").read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


def main(modules: list[str]) -> int:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         capture_output=True, text=True, check=True).stdout
    results = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            results[name] = status
    excluded = equivalents()
    failing = False
    for module in modules:
        mine = {n: s for n, s in results.items() if n.startswith(module + ".")}
        counts = Counter(s for n, s in mine.items() if n not in excluded)
        considered = sum(counts.values())
        killed = counts["killed"] + counts["timeout"]  # a mutant that hangs the tests is caught
        score = 100.0 * killed / considered if considered else 0.0
        left = sorted(n for n, s in mine.items() if n not in excluded and s not in ("killed", "timeout"))
        equivalent = sum(1 for n in mine if n in excluded)
        print(f"{module}: {score:.1f} % killed ({killed}/{considered}; {equivalent} equivalent left out)")
        for name in left:
            print(f"    {mine[name]}: {name}")
        failing = failing or score < 90.0
    stale = sorted(n for n in excluded if n not in results)
    if stale:
        print("equivalent.txt names mutants mutmut no longer makes (renumbered? re-check them):")
        for name in stale:
            print("    " + name)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or MODULES))
