"""simkit: what every provider simulator needs, so each simulator only writes its provider's API.

- :class:`SimCore` (core.py): call log, fault queue, stored idempotent responses, a lock; subclass
  it with the provider's cards.
- :class:`Dialect` (dialect.py): the provider's error shapes and its pre-routing ``check`` (auth,
  required headers); the base class speaks the kit's neutral ``{"error": {code, message}}``.
- :func:`create_sim_app` (app.py): the provider's route handlers behind the :class:`Gate`
  (gate.py: record, fault, check, then route), plus the ``/_sim`` control routes.
- :func:`explain` / :class:`Problem` (validation.py): msgspec errors as structured problems, for
  provider-shaped validation errors.
- :func:`run_cli` (cli.py): the ``__main__`` of a simulator in a few lines.

See README.md next to this file.
"""

from .app import (
    MAX_BODY_BYTES,
    SIM_PREFIX,
    FaultRequest,
    SimApp,
    create_sim_app,
    everything_but_sim,
    prefix_matcher,
    reply_response,
)
from .cli import CliError, read_secret, run_cli, serve
from .core import (
    Fault,
    FaultMode,
    IdempotencyKeyReused,
    SimCore,
    StoredResponse,
    utc_now,
)
from .dialect import Dialect, ReplyError, SimError, neutral_body, neutral_reply
from .gate import GARBAGE_BODY, MASK, ApiRequest, Gate, Reply
from .validation import (
    CURRENCIES,
    Problem,
    decode_neutral,
    decode_strict,
    explain,
    json_value,
    media_type,
)

__all__ = [
    "CURRENCIES",
    "GARBAGE_BODY",
    "MASK",
    "MAX_BODY_BYTES",
    "SIM_PREFIX",
    "ApiRequest",
    "CliError",
    "Dialect",
    "Fault",
    "FaultMode",
    "FaultRequest",
    "Gate",
    "IdempotencyKeyReused",
    "Problem",
    "Reply",
    "ReplyError",
    "SimApp",
    "SimCore",
    "SimError",
    "StoredResponse",
    "create_sim_app",
    "decode_neutral",
    "decode_strict",
    "everything_but_sim",
    "explain",
    "json_value",
    "media_type",
    "neutral_body",
    "neutral_reply",
    "prefix_matcher",
    "read_secret",
    "reply_response",
    "run_cli",
    "serve",
    "utc_now",
]
