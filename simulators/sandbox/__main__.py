"""Command line entry point: ``python -m simulators.sandbox [--host H] [--port P] [--key-file PATH]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litestar import Litestar

from simulators.simkit import CliError, run_cli

from . import DEFAULT_KEY_FILE, DEFAULT_PORT, read_api_key
from .app import create_app


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-file", type=Path, default=DEFAULT_KEY_FILE, help="file holding the API key")


def _build(args: argparse.Namespace) -> Litestar:
    try:
        api_key = read_api_key(args.key_file)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read API key: {exc}") from None
    return create_app(api_key)


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        name="sandbox",
        label="sandbox provider",
        prog="python -m simulators.sandbox",
        description="Sandbox gift card provider.",
        default_port=DEFAULT_PORT,
        add_arguments=_arguments,
        build=_build,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
