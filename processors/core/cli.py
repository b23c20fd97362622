"""What every script shares: argument conventions and user-facing error handling."""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

from processors.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse with the house's one-line error (argparse's own prints its whole usage first)."""

    def error(self, message: str):
        if message.endswith("expected one argument"):
            # argparse takes a value such as "-0.5:0.2" for an option and reports it missing
            flag, argv = message.split()[1].rstrip(":"), sys.argv[1:]
            nxt = next((b for a, b in zip(argv, argv[1:]) if a == flag), "")
            if nxt.startswith("-") and nxt.split("=")[0] not in self._option_string_actions:
                message += f"; a value that starts with '-' goes after '=': {flag}={nxt}"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser(description: str) -> argparse.ArgumentParser:
    p = _Parser(description=description)
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def check_option(flag: str, values, low: float, above: bool = False) -> None:
    """UserError ``<flag> <value>: must be ...`` unless every one of ``values`` (a number or a
    list) is finite and >= ``low`` (> ``low`` where ``above``): scripts' numeric
    options, checked before any work, since torch.set_num_threads(0), a negative seed or a NaN
    gap otherwise fail deep inside as tracebacks (or as a table of NaN)."""
    for v in values if isinstance(values, (list, tuple)) else [values]:
        if not (math.isfinite(v) and (v > low if above else v >= low)):
            kind = "an integer" if isinstance(v, int) else "a finite number"
            raise UserError(f"{flag} {v:g}: must be {kind} {'>' if above else '>='} {low:g}")


def check_output_file(path: Path, flag: str, force: bool, suffixes: tuple[str, ...] = (),
                      others: dict[str, Path] | None = None) -> None:
    """UserError unless ``path`` (given as ``flag``) can take a new file: none of ``others``
    (``{what it is: path}``), named with one of ``suffixes`` (any if empty), not a folder nor
    under a file, and not an existing file unless ``force``: nothing the user had is replaced
    by accident."""
    for what, other in (others or {}).items():
        if path.resolve() == Path(other).resolve():
            raise UserError(f"{flag} {path} is {what}; choose another path (it is never overwritten)")
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name inside it")
    if suffixes and path.suffix.lower() not in suffixes:
        names = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
        raise UserError(f"{flag} {path}: use a {names} file name")
    check_output_folder(path.parent, flag)
    if path.exists() and not force:
        raise UserError(f"{flag} {path} exists; choose another path or add --force to replace it")


def check_output_folder(path: Path, flag: str) -> None:
    """UserError if ``path`` (given as ``flag``, or a file's folder) cannot be a folder that
    takes files: it, or the nearest existing path above it, is a file, or the system refuses to
    create it or a file in it (tried now, and undone: not at the end of a long run)."""
    above = next((p for p in (path, *path.parents) if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UserError(f"{flag}: {above} is a file, not a folder")
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{flag}: cannot create files in {path} ({exc.strerror or exc})") from None
    finally:
        for p in created:                   # deepest first: leave nothing behind
            try:
                p.rmdir()
            except OSError:
                pass


def summary_line(summary: dict) -> str:
    """A run's summary as ``key=value`` pairs on one line (floats to 5 significant digits)."""
    return " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items())


def run(main: Callable[[argparse.Namespace], int | None], p: argparse.ArgumentParser) -> None:
    """Parse, run, and turn user errors into ``error: ...`` on one line with exit code 2 (1 for a file
    that cannot be read or written); ``--debug`` shows the traceback instead."""
    args = p.parse_args()
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
