"""The full-size run of the money-conservation property (tests/test_money_conserved.py).

    python benchmarks/money_fuzz.py [--examples 500] [--seed N]

Runs the property with ``GATEWAY_FUZZ_EXAMPLES`` sequences (500 by default; the suite runs 25)
under pytest, then prints what it exercised: sequences, webhooks sent, retries of unknown
outcomes, faults injected at the provider, answers by operation and status, the gateway's error
messages, and the wall time. Exit status: pytest's (0 = no money created or lost).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="sequences to run (default 500)")
    parser.add_argument("--seed", type=int, help="hypothesis seed, to repeat a run")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "stats.json"
        env = {**os.environ, "GATEWAY_FUZZ_EXAMPLES": str(args.examples), "GATEWAY_FUZZ_STATS": str(stats_file)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_money_conserved.py"]
        if args.seed is not None:
            command.append(f"--hypothesis-seed={args.seed}")
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=env)
        elapsed = time.perf_counter() - started
        stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}

    print()
    print(f"money conservation fuzz: {'PASSED' if result.returncode == 0 else 'FAILED'} in {elapsed:.0f} s")
    sequences = stats.get("sequences", 0)
    print(f"  sequences run (shrinking included): {sequences}")
    print(f"  webhooks sent: {stats.get('webhooks', 0)}, of which retries after an unknown outcome: "
          f"{stats.get('retries', 0)}")
    groups = {
        "steps": "step:",
        "faults injected at the provider": "fault:",
        "duplicates (same key; body change)": "duplicate:",
        "successful answers lost (NewStore retried them later)": "lost:",
        "definitive answers by operation": ("create:", "capture:", "refund:", "revoke:"),
        "all answers by status": "status:",
        "error codes": "error:",
        "error messages (digits as N)": "why:",
    }
    for title, prefixes in groups.items():
        items = sorted((k, v) for k, v in stats.items() if k.startswith(prefixes))
        if items:
            print(f"  {title}:")
            for key, value in items:
                print(f"    {key.split(':', 1)[1] if title != 'definitive answers by operation' else key}: {value}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
