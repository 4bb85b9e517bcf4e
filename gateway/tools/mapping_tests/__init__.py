"""``gateway test``: mapping test cases, run offline through the real engine."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TextIO

from ...diagnostics import errors
from .runner import Outcome, clock, run_file, summary

# Exit statuses, as pytest's.
OK, FAILED, COLLECTION_ERRORS, USAGE, NO_TESTS = 0, 1, 2, 4, 5


def find(paths: list[Path]) -> list[Path]:
    if not paths:
        paths = [Path("mappings")]
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.test.y*ml") if p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(str(path))
    return found


def main(paths: list[Path], out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up now, not at import: a captured or replaced stdout is honoured
    # The webhook log lines would interleave with the results; the results say it all.
    logging.getLogger("gateway.runtime.webhook").setLevel(logging.CRITICAL)
    started = clock()
    try:
        files = find(paths)
    except FileNotFoundError as exc:
        print(f"gateway test: {exc} does not exist", file=sys.stderr)
        return USAGE
    outcomes: list[Outcome] = []
    error_count = 0
    for file in files:
        results, diagnostics = asyncio.run(run_file(file))
        for d in errors(diagnostics):
            out.write(f"ERROR {d}\n")
        error_count += len(errors(diagnostics))
        outcomes.extend(results)
        for outcome in results:
            status = "PASSED" if outcome.passed else "FAILED"
            out.write(f"{outcome.file}:{outcome.line}: {outcome.name} {status}\n")
            for line in outcome.failure:
                out.write(f"    {line}\n")
    out.write(summary(outcomes, error_count, clock() - started) + "\n")
    if error_count:
        return COLLECTION_ERRORS
    if not outcomes:
        return NO_TESTS
    return OK if all(o.passed for o in outcomes) else FAILED
