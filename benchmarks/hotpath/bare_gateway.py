"""``gateway serve`` without request ids: the benchmark's ``gateway-no-ids`` and ``gateway-bare`` targets.

The gateway has no switch for request ids (every answer carries ``X-Request-ID``; every log line
its id), so to show what they cost this entry runs ``gateway serve`` with the ASGI wrapper that
adds them (``gateway.observe.requestid.wrap``) replaced by nothing before the app is built. With
``--no-metrics --log-level warning`` (as run.py starts ``gateway-bare``) what is left is the
webhook itself.

    python benchmarks/hotpath/bare_gateway.py serve --config ... --no-metrics --log-level warning
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from gateway import cli  # noqa: E402
from gateway.observe import requestid  # noqa: E402

requestid.wrap = lambda app: app  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
