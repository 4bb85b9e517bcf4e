"""Startup benchmark: ``gateway serve`` with many mappings until /health answers, installed as a user
installs it, next to a hand-written adapter's start measured in the same rounds.

    python benchmarks/hotpath/startup.py                      # 500 mappings, 7 alternated rounds
    python benchmarks/hotpath/startup.py --before DIR         # and an earlier checkout (git worktree add DIR <commit>)
    python benchmarks/hotpath/startup.py --venv DIR           # make (or reuse) the installed venv in DIR

The gateway is measured in a venv of its own made with ``pip install <repository>`` (not editable),
as README's "installed" command does: only the gateway's dependencies are there. In the
benchmark's own venv, Litestar would also load its pydantic plugins (FastAPI brings pydantic for
the reference adapter), which a gateway installed alone never pays. ``--before DIR`` installs an
earlier checkout the same way, in another venv.

Each round starts, one after the other and in a rotating order: the gateway with
--mappings generated providers (each its own mapping file), the gateway with one, the earlier
checkout with --mappings if asked, and the hand-written Litestar + aiohttp adapter
(adapters/litestar_aiohttp.py, in this venv) until it accepts connections (uvicorn accepts
only once the app has started). Then ``gateway lint`` of the generated mappings. It prints the
median, min and max of each and the ratio of the medians to the adapter's: on a shared machine
the seconds move with the neighbours, the ratio much less.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.hotpath.run import (  # noqa: E402
    Abort,
    Processes,
    free_port,
    generate_mappings,
    rss_bytes,
    uvicorn_argv,
    wait_ready,
)

ADAPTER = "benchmarks.hotpath.adapters.litestar_aiohttp:app"


def installed_venv(folder: Path, source: Path) -> Path:
    """A venv in ``folder`` with ``source`` installed as a user installs it (``pip install .``, not
    editable); reused when it is already there. Returns its ``gateway`` command."""
    gateway = folder / "bin" / "gateway"
    if gateway.exists():
        return gateway
    print(f"installing {source} into {folder} (pip install, not editable)", flush=True)
    for argv in ([sys.executable, "-m", "venv", str(folder)],
                 [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)]):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise Abort(f"{' '.join(argv)} failed (status {done.returncode}):\n{done.stderr[-2000:]}")
    return gateway


def serve_argv(gateway: Path, config: Path, port: int) -> list[str]:
    return [str(gateway), "serve", "--config", str(config), "--port", str(port), "--workers", "1",
            "--log-level", "warning", "--no-companions"]


def measure(procs: Processes, tmp: Path, *, mappings: int, rounds: int, venv: Path | None = None,
            before: Path | None = None) -> str:
    """Run the rounds; the markdown table of the results."""
    gateway = installed_venv(venv or tmp / "venv-installed", ROOT)
    earlier = installed_venv(tmp / "venv-before", before) if before is not None else None
    many = generate_mappings(tmp / "startup-many", mappings, "http://127.0.0.1:9").parent
    one = generate_mappings(tmp / "startup-one", 1, "http://127.0.0.1:9").parent
    # name -> the `gateway` command and the folder of the gateway.yaml it serves; None: the adapter
    targets: dict[str, tuple[Path, Path] | None] = {
        f"gateway serve, {mappings} mappings": (gateway, many),
        "gateway serve, 1 mapping": (gateway, one),
    }
    if earlier is not None:
        targets[f"gateway serve, {mappings} mappings, earlier checkout `{before.name}`"] = (earlier, many)
    targets["hand-written adapter (Litestar + aiohttp), 1 route"] = None
    seconds: dict[str, list[float]] = {name: [] for name in targets}
    rss: dict[str, list[int]] = {name: [] for name in targets}
    lint: list[float] = []
    lint_summary = ""
    names = list(targets)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        print(f"startup round {r + 1}/{rounds}", flush=True)
        for name in order:
            port = free_port()
            target = targets[name]
            if target is None:  # ready once uvicorn accepts: it binds after the app's startup
                proc = procs.start("startup", uvicorn_argv(ADAPTER, port), cwd=ROOT)
                seconds[name].append(wait_ready(procs, "startup", port, None, timeout=600))
            else:
                command, folder = target
                proc = procs.start("startup", serve_argv(command, folder / "gateway.yaml", port), cwd=folder)
                seconds[name].append(wait_ready(procs, "startup", port, "/health", timeout=600))
            rss[name].append(rss_bytes(proc.pid))
            procs.stop("startup")
        started = time.perf_counter()
        done = subprocess.run([str(gateway), "lint", "--config", str(many / "gateway.yaml")], cwd=many,
                              capture_output=True, text=True, timeout=600)
        lint.append(time.perf_counter() - started)
        lint_summary = f"exit {done.returncode}: " + (done.stdout.strip().splitlines() or ["(no output)"])[-1][:80]
    adapter = statistics.median(seconds[names[-1]])
    lines = [f"Median of {rounds} rounds (each target once per round, in a rotating order); "
             f"the gateway installed with `pip install .` in a venv of its own.\n",
             "| start | median s | min s | max s | ÷ adapter | RSS MiB |", "|---|---|---|---|---|---|"]
    for name in names:
        values = seconds[name]
        lines.append(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} "
                     f"| {statistics.median(values) / adapter:.2f} | {statistics.median(rss[name]) / 2**20:.0f} |")
    lines.append(f"| `gateway lint` of the {mappings} mappings ({lint_summary}) | {statistics.median(lint):.2f} "
                 f"| {min(lint):.2f} | {max(lint):.2f} | {statistics.median(lint) / adapter:.2f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mappings", type=int, default=500, help="generated mappings (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=7, help="alternated rounds (default: %(default)s)")
    parser.add_argument("--venv", type=Path, default=None,
                        help="where the installed venv is made, or reused if there (default: a temporary folder)")
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="also an earlier checkout (git worktree add DIR <commit>), installed in a venv of its own")
    args = parser.parse_args(argv)
    if args.mappings < 1 or args.rounds < 1:
        parser.error("--mappings and --rounds must be positive")
    with tempfile.TemporaryDirectory(prefix="startup-") as folder:
        tmp = Path(folder)
        procs = Processes(tmp)
        try:
            table = measure(procs, tmp, mappings=args.mappings, rounds=args.rounds, venv=args.venv, before=args.before)
        except Abort as exc:
            print(f"\nbenchmark aborted: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        finally:
            procs.stop_all()
    print(f"\n## Startup: `gateway serve` until /health answers\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
