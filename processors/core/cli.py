"""What every script shares: argument conventions and user-facing error handling."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from processors.core.errors import UserError


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def summary_line(summary: dict) -> str:
    """A run's summary as ``key=value`` pairs on one line (floats to 5 significant digits)."""
    return " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items())


def run(main: Callable[[argparse.Namespace], int | None], p: argparse.ArgumentParser, argv=None) -> None:
    """Parse, run, and turn user errors into ``error: ...`` on one line with exit code 2 (1 for a file
    that cannot be read or written); ``--debug`` shows the traceback instead."""
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(levelname)s %(message)s")
    try:
        code = main(args)
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:          # a path that cannot be read or written: say which, no traceback
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
