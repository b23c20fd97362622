"""What an evaluation writes: metrics.csv, summary.md, plots and the listening report's excerpts."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from processors.atomic import atomic_path, write_text_atomic

# column -> (title, True when higher is better, decimals in summary.md)
METRICS = {
    "lsd_db": ("LSD on the gap (dB)", False, 2),
    "mel_mse": ("Mel MSE on the gap (normalised)", False, 4),
    "mel_snr_db": ("Mel SNR on the gap (dB)", True, 2),
    "pesq_wb": ("PESQ-WB, whole clip", True, 2),
    "stoi": ("STOI, whole clip", True, 3),
    "estoi": ("ESTOI, whole clip", True, 3),
}
COLUMNS = ["file", "gap_ms", "gap_index", "start_s", "end_s", "system", *METRICS, "skipped"]


def write_csv(rows: list[dict], path: Path) -> None:
    """One row per (file, gap, system); NaN metrics (skipped) are written as empty cells."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})


def mean_ci(values: list[float]) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % t-interval, n) over the non-NaN values; the
    half-width is NaN for fewer than two values."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if len(x) == 0:
        return math.nan, math.nan, 0
    if len(x) < 2 or not np.all(np.isfinite(x)):
        return float(np.mean(x)), math.nan, len(x)
    half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / math.sqrt(len(x))
    return float(np.mean(x)), float(half), len(x)


def summarise(rows: list[dict]) -> dict[tuple[str, float, str], tuple[float, float, int]]:
    """(system, gap_ms, metric) -> (mean, 95 % CI half-width, n)."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["system"], row["gap_ms"]), []).append(row)
    return {(system, ms, m): mean_ci([r[m] for r in group])
            for (system, ms), group in groups.items() for m in METRICS}


def _cell(mean: float, half: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def summary_markdown(summary: dict, systems: list[str], gap_ms: list[float], header: list[str]) -> str:
    """One table per metric: rows are systems, columns gap lengths, cells mean ± 95 % CI."""
    lines = ["# Gap-filling evaluation", "", *header, "",
             "Gap metrics (LSD, Mel MSE, Mel SNR) score the frames centred inside the gap, computed "
             "from the filled waveform (after vocoding and splicing); PESQ-WB, STOI and ESTOI score the "
             "whole clip at 16 kHz. Cells: mean ± 95 % confidence interval (t-interval) over the scored "
             "gaps; ↓ lower is better, ↑ higher is better.", ""]
    for m, (title, higher, digits) in METRICS.items():
        lines += [f"## {title} {'↑' if higher else '↓'}", "",
                  "| system | " + " | ".join(f"{ms:g} ms" for ms in gap_ms) + " |",
                  "|---|" + "---:|" * len(gap_ms)]
        ns = set()
        for system in systems:
            cells = [summary.get((system, ms, m), (math.nan, math.nan, 0)) for ms in gap_ms]
            ns.update(n for _, _, n in cells)
            lines.append(f"| {system} | " + " | ".join(_cell(mean, half, digits) for mean, half, _ in cells) + " |")
        span = f"{min(ns)}" if len(ns) == 1 else f"{min(ns)}–{max(ns)} (some clips skipped: see metrics.csv)"
        lines += ["", f"n = {span} gaps per cell.", ""]
    return "\n".join(lines)


def plot_metrics(summary: dict, systems: list[str], gap_ms: list[float], path: Path) -> None:
    """Every metric against gap length, one line (with 95 % CI bars) per system."""
    from training.figures import plt, save_figure
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), squeeze=False)
    for ax, (m, (title, higher, _)) in zip(axes.flat, METRICS.items()):
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
        with torch.no_grad():
            panels = [(name, mel_fn(torch.from_numpy(np.ascontiguousarray(w))).numpy()) for name, w in ex.waves.items()]
        start_s = ex.offset / sr
        fig = mel_figure([(f"{name} ({ex.file}, {ex.gap_ms:g} ms gap at {start_s + ex.gap[0] / sr:.2f} s)"
                           if i == 0 else name, mel) for i, (name, mel) in enumerate(panels)],
                         hop_s, [(ex.gap[0] / sr, ex.gap[1] / sr)])
        path = folder / f"example_{ex.file}_{ex.gap_ms:g}ms.png"
        save_figure(fig, path)
        paths.append(path)
    return paths


def write_report(out: Path, rows: list[dict], examples: list, systems: list[str], gap_ms: list[float],
                 cfg, header: list[str]) -> dict[str, Path]:
    """metrics.csv, summary.md, plots/metrics_vs_gap.png, plots/example_*.png and the examples'
    excerpts for the listening report (report/examples.json, report/audio/) under ``out``."""
    from training.evaluation import EXAMPLE_CONTEXT_S
    from training.report import save_examples
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    paths = {"csv": out / "metrics.csv", "summary": out / "summary.md", "plot": out / "plots" / "metrics_vs_gap.png"}
    write_csv(rows, paths["csv"])
    write_text_atomic(paths["summary"], summary_markdown(summary, systems, gap_ms, header))
    plot_metrics(summary, systems, gap_ms, paths["plot"])
    plot_examples(examples, cfg, out / "plots")
    paths["examples"] = save_examples(examples, cfg.audio, out / "report", EXAMPLE_CONTEXT_S)
    return paths
