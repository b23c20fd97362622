"""Rebuild the listening report of an evaluation: python scripts/report.py results/<name> -> results/<name>/report.html"""
import _path  # noqa: F401

from processors.core.cli import parser, run


def main(args) -> int:
    from pathlib import Path

    from training.evaluation.report import build_report

    page = build_report(Path(args.results), args.title)
    print(f"listening report -> {page} (open it in a browser; the folder {page.parent} is self-contained)")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("results", help="a folder scripts/evaluate.py wrote (it holds report/examples.json)")
    p.add_argument("--title", help="the page's title (default: 'Listening report: <folder name>')")
    run(main, p)
