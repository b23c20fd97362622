"""What an evaluation writes: metrics.csv, summary.md and the plots (the listening report: report.py)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from scipy import stats

from processors.core.atomic import atomic_path
from processors.excerpt_metrics import GAP_COLUMNS
from processors.mel import log_mel

SUMMARY_DATA = "summary.json"   # the summary as data (summary_document), beside summary.md

# column -> (title, True when higher is better, decimals in summary.md)
METRICS = {
    "lsd_db": ("LSD on the gap (dB)", False, 2),
    "mel_mse": ("Mel MSE on the gap (normalised)", False, 4),
    "mel_snr_db": ("Mel SNR on the gap (dB)", True, 2),
    "pesq_wb": ("PESQ-WB on the excerpt", True, 2),
    "stoi": ("STOI on the excerpt", True, 3),
    "estoi": ("ESTOI on the excerpt", True, 3),
    "plcmos": ("PLCMOS v2 on the excerpt", True, 2),
    "dnsmos": ("DNSMOS overall on the excerpt", True, 2),
    "visqol": ("ViSQOL v3 (audio) on the excerpt", True, 2),
}
# The summary's first table, one row per system: the metrics that decide (those the rows hold).
HEADLINE = ("plcmos", "pesq_wb", "visqol", "lsd_db", "mel_snr_db")
KEYS = ["file", "gap_ms", "gap_index", "start_s", "end_s", "excerpt_s", "system"]


def row_metrics(rows: list[dict]) -> list[str]:
    """The metric columns the rows hold (those of their domain), in METRICS order."""
    return [m for m in METRICS if rows and m in rows[0]]


def write_csv(rows: list[dict], path: Path) -> None:
    """One row per (file, gap, system); NaN metrics (skipped) are written as empty cells."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*KEYS, *row_metrics(rows), "skipped"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})


def mean_ci(values: list[float], files: list[str] | None = None) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % t-interval, n) over the non-NaN values; the half-width is
    NaN for fewer than two values (two files), or when a value is infinite.

    With ``files`` (each value's file), the interval is clustered by file: gaps of one file
    share its speaker, recording and music, so they are not independent, and an interval
    that treats them as such is too narrow (by 1.2-1.8x on the speech test set, more for music).
    Its standard error is the cluster-robust one (CR1) of the mean, t with files - 1 degrees of
    freedom; with as many values per file it is the t-interval over the per-file means."""
    keep = [i for i, v in enumerate(values) if not math.isnan(v)]
    x = np.asarray([values[i] for i in keep], dtype=np.float64)
    if len(x) == 0:
        return math.nan, math.nan, 0
    mean = float(np.mean(x))
    if files is None:
        files = [str(i) for i in range(len(x))]       # every value its own cluster: the plain t-interval
    else:
        files = [files[i] for i in keep]
    clusters = sorted(set(files))
    g = len(clusters)
    if g < 2 or not np.all(np.isfinite(x)):
        return mean, math.nan, len(x)
    index = {c: k for k, c in enumerate(clusters)}
    sums = np.zeros(g)
    np.add.at(sums, [index[f] for f in files], x - mean)
    se = math.sqrt(g / (g - 1) * float(np.sum(sums ** 2))) / len(x)
    return mean, float(stats.t.ppf(0.975, g - 1) * se), len(x)


def summarise(rows: list[dict]) -> dict[tuple[str, float, str], tuple[float, float, int]]:
    """(system, gap_ms, metric) -> (mean, 95 % CI half-width clustered by file, n)."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["system"], row["gap_ms"]), []).append(row)
    return {(system, ms, m): mean_ci([r[m] for r in group], [r["file"] for r in group])
            for (system, ms), group in groups.items() for m in row_metrics(rows)}


def paired(rows: list[dict], reference: str) -> dict[tuple[str, float, str], tuple[float, float, int]]:
    """(system, gap_ms, metric) -> (mean, 95 % CI half-width clustered by file, n) of each other
    system's score minus ``reference``'s on the same gap: the comparison that removes how hard
    each gap is, which the per-system intervals cannot."""
    key = lambda r: (r["file"], r["gap_ms"], r["gap_index"])      # noqa: E731
    ref = {key(r): r for r in rows if r["system"] == reference}
    pairs: dict[tuple[str, float], list[tuple[dict, dict]]] = {}
    for row in rows:
        if row["system"] != reference and key(row) in ref:
            pairs.setdefault((row["system"], row["gap_ms"]), []).append((row, ref[key(row)]))
    return {(system, ms, m): mean_ci([a[m] - b[m] for a, b in group], [a["file"] for a, _ in group])
            for (system, ms), group in pairs.items() for m in row_metrics(rows)}


def paired_section(diffs: dict, reference: str, systems: list[str], gap_ms: list[float]) -> dict:
    """One section, one table: a row per system but ``reference``, a column per (metric, gap
    length) of the headline metrics; cells: mean difference ± 95 % CI."""
    metrics = [m for m in HEADLINE if m in metrics_in(diffs)]
    rows = []
    for system in (s for s in systems if s != reference):
        cells = [diffs.get((system, ms, m), (math.nan, math.nan, 0)) for m in metrics for ms in gap_ms]
        digits = [METRICS[m][2] for m in metrics for _ in gap_ms]
        rows.append([system] + [_cell(mean, half, d, signed=True) for (mean, half, _), d in zip(cells, digits)])
    short = {m: METRICS[m][0].split(" on ")[0] + (" ↑" if METRICS[m][1] else " ↓") for m in metrics}
    return {"title": f"Paired against {reference}",
            "blocks": [{"p": f"Each system's score minus `{reference}`'s on the same gap: mean ± 95 % interval, "
                             "clustered by file. An interval that leaves out 0 is a difference beyond noise."},
                       _table(["system"] + [f"{short[m]} {ms:g} ms" for m in metrics for ms in gap_ms], rows)]}


def _cell(mean: float, half: float, digits: int, signed: bool = False) -> str:
    if math.isnan(mean):
        return "–"
    value = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return value if math.isnan(half) else f"{value} ± {half:.{digits}f}"


def metrics_in(summary: dict) -> list[str]:
    """The metrics a summary holds, in METRICS order."""
    present = {m for _, _, m in summary}
    return [m for m in METRICS if m in present]


def _table(head: list[str], rows: list[list[str]]) -> dict:
    """A table block: the first column (names) left-aligned, the numbers right-aligned."""
    return {"table": {"head": head, "right": [False] + [True] * (len(head) - 1), "rows": rows}}


def headline_table(summary: dict, systems: list[str], gap_ms: list[float], metrics: list[str]) -> dict:
    """One section, one table: a row per system, a column per (metric, gap length); means only."""
    short = {m: METRICS[m][0].split(" on ")[0] + (" ↑" if METRICS[m][1] else " ↓") for m in metrics}
    rows = []
    for system in systems:
        cells = [summary.get((system, ms, m), (math.nan, math.nan, 0))[0] for m in metrics for ms in gap_ms]
        digits = [METRICS[m][2] for m in metrics for _ in gap_ms]
        rows.append([system] + [_cell(c, math.nan, d) for c, d in zip(cells, digits)])
    return {"title": "At a glance (means; intervals and n in the tables below)",
            "blocks": [_table(["system"] + [f"{short[m]} {ms:g} ms" for m in metrics for ms in gap_ms], rows)]}


def summary_document(summary: dict, systems: list[str], gap_ms: list[float], header: list[str],
                     paired_with: tuple[str, dict] | None = None) -> list[dict]:
    """The summary as data: ``header`` (the run's description, list items) first, the headline
    table, the paired differences against ``paired_with = (reference, paired(...))`` if given,
    then one table per metric (rows: systems, columns: gap lengths, cells: mean ± 95 % CI): sections
    ``{"title", "blocks"}``, the first the page's title, each block ``{"p": text}``, ``{"list": [item]}`` or ``{"table": {"head", "right", "rows"}}``; text may
    hold `code` spans. summary.md (:func:`markdown`) and the HTML report render from it."""
    metrics = metrics_in(summary)
    intro = ("Gap metrics (LSD, Mel MSE, Mel SNR) score the frames centred inside the gap, computed "
             "from the filled waveform (after vocoding and splicing); "
             f"{', '.join(METRICS[m][0].split(' on ')[0] for m in metrics if m not in GAP_COLUMNS)} are scored "
             "on the excerpt around the gap (the same seconds of audio for every system). Cells: mean ± 95 % "
             "confidence interval over the scored gaps, clustered by file (gaps of one file are not "
             "independent); ↓ lower is better, ↑ higher is better.")
    sections = [{"title": "Gap-filling evaluation", "blocks": ([{"list": header}] if header else []) + [{"p": intro}]},
                headline_table(summary, systems, gap_ms, [m for m in HEADLINE if m in metrics])]
    if paired_with is not None:
        sections.append(paired_section(paired_with[1], paired_with[0], systems, gap_ms))
    for m in metrics:
        title, higher, digits = METRICS[m]
        rows, ns = [], set()
        for system in systems:
            cells = [summary.get((system, ms, m), (math.nan, math.nan, 0)) for ms in gap_ms]
            ns.update(n for _, _, n in cells)
            rows.append([system] + [_cell(mean, half, digits) for mean, half, _ in cells])
        span = f"{min(ns)}" if len(ns) == 1 else f"{min(ns)}–{max(ns)} (some clips skipped: see metrics.csv)"
        sections.append({"title": f"{title} {'↑' if higher else '↓'}",
                         "blocks": [_table(["system"] + [f"{ms:g} ms" for ms in gap_ms], rows),
                                    {"p": f"n = {span} gaps per cell."}]})
    return sections


def markdown(document: list[dict]) -> str:
    """A :func:`summary_document` as Markdown: '# ' for the first section, '## ' for the rest."""
    lines = []
    for i, section in enumerate(document):
        lines += [("# " if i == 0 else "## ") + section["title"], ""]
        for block in section["blocks"]:
            if "table" in block:
                t = block["table"]
                lines += ["| " + " | ".join(t["head"]) + " |", "|" + "".join("---:|" if r else "---|" for r in t["right"])]
                lines += ["| " + " | ".join(row) + " |" for row in t["rows"]]
            elif "list" in block:
                lines += [f"- {item}" for item in block["list"]]
            else:
                lines.append(block["p"])
            lines.append("")
    return "\n".join(lines)


def plot_metrics(summary: dict, systems: list[str], gap_ms: list[float], path: Path) -> None:
    """Every metric against gap length, one line (with 95 % CI bars) per system."""
    from training.figures import plt, save_figure
    metrics = metrics_in(summary)
    rows = math.ceil(len(metrics) / 3)
    fig, axes = plt.subplots(rows, 3, figsize=(14, 3.75 * rows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, metrics):
        title, higher, _ = METRICS[m]
        for system in systems:
            stats_ = [summary.get((system, ms, m), (math.nan, math.nan, 0)) for ms in gap_ms]
            means = [s[0] for s in stats_]
            errs = [0.0 if math.isnan(s[1]) else s[1] for s in stats_]
            ax.errorbar(gap_ms, means, yerr=errs, marker="o", capsize=3, label=system)
        ax.set_title(f"{title} {'↑' if higher else '↓'}", fontsize=10)
        ax.set_xlabel("gap length (ms)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_examples(examples: list, cfg, folder: Path) -> list[Path]:
    """Per example: Mel spectrograms of the original, the gapped input and every system's fill."""
    from processors.mel import MelSpectrogram
    from training.figures import mel_figure, save_figure
    mel_fn = MelSpectrogram(cfg.audio)
    hop_s = cfg.audio.hop_length / cfg.audio.sample_rate
    sr = cfg.audio.sample_rate
    paths = []
    for ex in examples:
        panels = [(name, log_mel(mel_fn, w)) for name, w in ex.waves.items()]
        start_s = ex.offset / sr
        fig = mel_figure([(f"{name} ({ex.file}, {ex.gap_ms:g} ms gap at {start_s + ex.gap[0] / sr:.2f} s)"
                           if i == 0 else name, mel) for i, (name, mel) in enumerate(panels)],
                         hop_s, [(ex.gap[0] / sr, ex.gap[1] / sr)])
        path = folder / f"example_{ex.file}_{ex.gap_ms:g}ms.png"
        save_figure(fig, path)
        paths.append(path)
    return paths
