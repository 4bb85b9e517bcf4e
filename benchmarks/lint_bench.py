"""Lint speed: 500 generated mapping files, timed against the cost of merely parsing them.

    python benchmarks/lint_bench.py [--files 500] [--repeat 3]

Prints a table: the baseline (PyYAML reading every file, the floor any linter pays), the full
`gateway lint` of the same files, the time per file, and lint's ratio to the baseline. Times
are the best of --repeat runs, because this machine is shared. Target from the lint issue:
the whole lint of 500 files under 3 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.tools.lint import lint  # noqa: E402
from gateway.language.templating import parse as _parse  # noqa: E402

parse_template_cache_clear = _parse.cache_clear


def generate(folder: Path, count: int) -> list[Path]:
    """Variations of the shipped sandbox mapping, each with its own variable, extract and key
    names, so that most templates differ from file to file (templates parse once per distinct
    text: identical files would measure a cache, not the linter)."""
    base = (ROOT / "mappings" / "sandbox.yaml").read_text()
    paths = []
    for i in range(count):
        text = base.replace("timeout: 5 ", f"timeout: {1 + i % 9} ").replace("card_case", f"card_case_{i}")
        text = re.sub(r"^(\s+)(\w+): card\.", rf"\1\2_{i}: card.", text, flags=re.M)
        text = re.sub(r"steps\.(\w+)\.(\w+)", rf"steps.\1.\2_{i}", text)
        text = text.replace("derive('", f"derive('{i}-").replace("{{ response.refusal.code }}", f"{{{{ response.refusal.code ~ '{i}' }}}}")
        path = folder / f"provider_{i:03}.yaml"
        path.write_text(text)
        paths.append(path)
    return paths


def best(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = generate(folder, args.files)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        parse = best(args.repeat, lambda: [yaml.compose(p.read_text(), Loader=loader) for p in paths])
        diagnostics: list = []
        def run() -> None:
            parse_template_cache_clear()  # every repeat starts cold, like a fresh `gateway lint`
            diagnostics[:] = lint([folder])

        full = best(args.repeat, run)
        command = [sys.executable, "-m", "gateway.cli", "lint", str(folder)]
        process = best(args.repeat, lambda: subprocess.run(command, cwd=ROOT, capture_output=True, check=False))
    n = args.files
    print(f"{'measure':<34}{'total s':>10}{'ms/file':>10}{'x baseline':>12}")
    print(f"{'baseline: libyaml compose, no checks':<34}{parse:>10.3f}{parse / n * 1000:>10.2f}{1.0:>12.1f}")
    print(f"{'gateway lint (all checks)':<34}{full:>10.3f}{full / n * 1000:>10.2f}{full / parse:>12.1f}")
    print(f"{'`gateway lint DIR` (whole process)':<34}{process:>10.3f}{process / n * 1000:>10.2f}{process / parse:>12.1f}")
    verdict = "met" if process < 3.0 else "NOT met"
    print(f"\nfiles: {n}, diagnostics: {len(diagnostics)}, cores: {os.cpu_count()}, "
          f"target: the whole `gateway lint` run under 3.0 s -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
