"""Summarise a py-spy raw profile: the top functions by own and by total time, and time by package.

    py-spy record --pid PID --duration 20 --rate 250 --format raw --nolineno -o gw.txt
    python benchmarks/hotpath/spy.py gw.txt [--top 15]

py-spy's raw format is one line per distinct stack, ``root;...;leaf COUNT``, each frame
``function (file)``. *Own* time counts the samples a function is the leaf of; *total* counts the
samples it is anywhere on the stack (once per sample, however deep the recursion). Idle samples
(the event loop waiting in epoll) are left out by py-spy unless ``--idle``, so percentages are
of the time the event loop's thread was busy (its samples in ``select`` are left out too).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_LINENO = re.compile(r":\d+\)$")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*)\)$")

# (package label, substrings of the frame's file): the first that matches names the frame
PACKAGES = [
    ("httpcore", ("httpcore/",)),
    ("httpx", ("httpx/",)),
    ("h11", ("h11/",)),
    ("anyio", ("anyio/",)),
    ("litestar", ("litestar/",)),
    ("aiohttp", ("aiohttp/",)),
    ("uvicorn", ("uvicorn/",)),
    ("jinja2", ("jinja2/",)),
    ("jmespath", ("jmespath/",)),
    ("msgspec", ("msgspec/",)),
    ("gateway", ("gateway/",)),
    ("logging", ("logging/",)),
    ("json", ("json/",)),
    ("asyncio", ("asyncio/",)),
    ("ssl/socket", ("ssl.py", "socket.py", "selectors.py")),
    ("jinja template", ("<template>",)),
]


def package_of(frame: str) -> str:
    match = _FRAME.match(frame)
    file = match.group("file") if match else frame
    for label, needles in PACKAGES:
        if any(n in file for n in needles):
            return label
    return "other: " + (file.rsplit("/", 1)[-1] if file else "?")


# The event loop's thread: asyncio's loop runs in Python (run_forever); uvloop's in C, under
# asyncio.run's Runner, so its stacks show the callbacks directly under `Runner.run`, and a stack
# ending there (or in a selector) is the loop waiting.
_LOOP_FRAMES = ("BaseEventLoop.run_forever ", "Runner.run (asyncio/runners.py)")
_WAIT_FRAMES = ("EpollSelector.select ", "select (selectors.py)", "Runner.run (asyncio/runners.py)",
                "BaseEventLoop.run_until_complete ")


def summarise(text: str, top: int = 15) -> str:
    """Only the event loop's thread (stacks through ``run_forever``), without its waits in
    ``select``: other threads (the SQLite store's) and py-spy's idle guesses are left out."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    own_pkg: Counter[str] = Counter()
    total_pkg: Counter[str] = Counter()
    samples = other = waiting = 0
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        frames = [f for f in match.group(1).split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        count = int(match.group(2))
        plain = [_LINENO.sub(")", f) for f in frames]  # recorded with line numbers (--profile-lines)
        if not frames or not any(f.startswith(_LOOP_FRAMES) for f in plain):
            other += count
            continue
        if plain[-1].startswith(_WAIT_FRAMES):
            waiting += count
            continue
        samples += count
        own[frames[-1]] += count
        own_pkg[package_of(frames[-1])] += count
        for frame in set(frames):
            total[frame] += count
        for pkg in {package_of(f) for f in frames}:
            total_pkg[pkg] += count
    if not samples:
        return "(no samples: was the process busy? is py-spy allowed to attach?)"

    def pct(n: int) -> str:
        return f"{n / samples * 100:.1f}%"

    out = [f"{samples} samples of the event loop's thread running Python (left out: {waiting} waiting in select, "
           f"{other} of other threads)", "", "| own | function (file) |", "|---|---|"]
    out += [f"| {pct(n)} | `{f}` |" for f, n in own.most_common(top)]
    out += ["", "| total | function (file) |", "|---|---|"]
    # Frames on (nearly) every stack, the event loop's own, say nothing: left out.
    out += [f"| {pct(n)} | `{f}` |" for f, n in total.most_common() if n < 0.97 * samples][:top]
    out += ["", "| package | own | total |", "|---|---|---|"]
    out += [f"| {p} | {pct(n)} | {pct(total_pkg[p])} |" for p, n in own_pkg.most_common(14)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    print(summarise(args.raw.read_text(errors="replace"), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
