"""``losses.csv``: one ``step,loss`` row per training step, kept consistent across resumes."""
from __future__ import annotations

from pathlib import Path

from processors.core.atomic import write_text_atomic


def truncate_log(path: Path, step: int) -> None:
    """Keep only rows up to ``step`` (a resumed run rewrites what came after its checkpoint).

    A run killed mid-write may leave a partial last line; it is dropped, like any row that
    does not read as ``step,loss``. The rewrite is atomic: a kill now loses nothing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    lines = text.split("\n")[:-1]          # the piece after the last newline is incomplete
    rows = []
    for line in lines:
        fields = line.split(",")
        if len(fields) == 2 and fields[0].isdigit() and 0 < int(fields[0]) <= step and _is_float(fields[1]):
            rows.append(line)
    write_text_atomic(path, "".join(r + "\n" for r in rows))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
