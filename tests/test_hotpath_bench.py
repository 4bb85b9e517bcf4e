"""The hot-path benchmark's correctness phase (benchmarks/hotpath/run.py --check-only).

No timings are asserted: this checks that every target the benchmark measures (the fake
provider, the gateway's balance, issue and three-step webhooks, the three hand-written adapters)
starts and answers the expected body, so the numbers it prints are of real answers. wrk is not
needed. The expectation functions are checked too: a wrong answer must stop the benchmark.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.hotpath import run as bench
from benchmarks.hotpath.spy import summarise

ROOT = Path(__file__).resolve().parent.parent


def test_every_target_answers_the_expected_body() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "hotpath" / "run.py"), "--check-only"],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in bench.ALL_TARGETS:
        assert f"check {name:<18} ok" in result.stdout, result.stdout
    assert "every target answered the expected body" in result.stdout


@pytest.mark.unit
@pytest.mark.parametrize(("status", "body"), [
    (200, b'{"value":"50.00","currency":"USD"}'),  # a string is not NewStore's number
    (200, b'{"value":5000,"currency":"USD"}'),  # minor units not converted
    (502, b'{"error_code":"provider_error","message":"x","request_accepted":true}'),
    (200, b"not json"),
])
def test_a_wrong_balance_answer_is_refused(status: int, body: bytes) -> None:
    assert bench.expect_balance(status, body) is not None


@pytest.mark.unit
def test_balance_answers_compare_as_json_numbers() -> None:
    assert bench.expect_balance(200, b'{"value":50.00,"currency":"USD"}') is None  # the gateway (Decimal)
    assert bench.expect_balance(200, b'{"value":50.0,"currency":"USD"}') is None  # an adapter (float)


@pytest.mark.unit
def test_a_wrong_issue_answer_is_refused() -> None:
    good = (b'{"identifier":{"number":"6006491111111111","pin":"480163"},'
            b'"amount":{"value":10,"currency":"USD"},"idempotence_key":"check-1"}')
    assert bench.expect_issue(200, good) is None
    assert bench.expect_issue(503, good) is not None
    assert bench.expect_issue(200, good.replace(b"480163", b"000000")) is not None


@pytest.mark.unit
def test_profile_summary_counts_own_and_total_time() -> None:
    loop = "main (app.py);BaseEventLoop.run_forever (asyncio/base_events.py)"
    raw = (f"{loop};handle (gateway/webhook.py);send (httpx/_client.py) 6\n"
           f"{loop};handle (gateway/webhook.py) 4\n"
           f"{loop};EpollSelector.select (selectors.py) 7\n"  # waiting: left out
           "run (threading.py);get (queue.py) 9\n")  # another thread: left out
    text = summarise(raw, top=5)
    assert "10 samples" in text
    assert "| 60.0% | `send (httpx/_client.py)` |" in text  # own
    assert "| httpx | 60.0% | 60.0% |" in text


def test_the_startup_benchmark_starts_each_target_and_prints_its_table(tmp_path: Path) -> None:
    """benchmarks/hotpath/startup.py, one small round: every target started until ready, lint run,
    one row each. The venv it would install into is this one's `gateway` command (a venv folder
    that already has one is reused), so no pip install runs here. No timing is asserted."""
    from benchmarks.hotpath import startup

    installed = tmp_path / "venv" / "bin"
    installed.mkdir(parents=True)
    (installed / "gateway").symlink_to(Path(sys.executable).parent / "gateway")
    procs = bench.Processes(tmp_path)
    try:
        table = startup.measure(procs, tmp_path, mappings=3, rounds=1, venv=tmp_path / "venv")
    finally:
        procs.stop_all()
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row[0].strip() for row in rows] == [
        "gateway serve, 3 mappings", "gateway serve, 1 mapping", "hand-written adapter (Litestar + aiohttp), 1 route",
        "`gateway lint` of the 3 mappings (exit 0: no problems found)"]
    assert all(float(row[1]) > 0 for row in rows)
    assert float(rows[2][4]) == 1.0  # the adapter is the baseline of the ratios
