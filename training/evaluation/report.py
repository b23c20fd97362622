"""The listening report: ``results/<name>/report.html``, to hear and see every system side by side.

Two steps, so a page can be rebuilt from an evaluation's folder alone
(``scripts/report.py results/<name>``):

1. :func:`save_examples` (every ``scripts/evaluate.py`` run, through :func:`write_report`): each kept example's
   excerpts (original, gapped input, every system's fill; ``EXAMPLE_CONTEXT_S``
   each side of the gap) as 16-bit wavs under ``report/audio/``, and
   ``report/examples.json`` with the gap, the audio settings and every clip's scores.
2. :func:`build_report` (``--report``, ``scripts/report.py``, ``make demo``): a small
   Mel spectrogram per clip (``report/spec/``, gap marked) and ``report.html`` with
   the summary's tables (from summary.json, the data of summary.md) and
   plots/metrics_vs_gap.png above the examples.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shutil
from pathlib import Path

import numpy as np

from processors.core.atomic import write_text_atomic
from processors.audio_io import read_audio, write_audio
from processors.core.errors import UserError
from processors.mel import log_mel
from training.evaluation.eval_report import (METRICS, SUMMARY_DATA, markdown, plot_examples, plot_metrics, summarise,
                                             paired, summary_document, write_csv)
from training.evaluation.evaluate import EXAMPLE_CONTEXT_S
from training.evaluation.report_html import SPEC_PX, page_html

log = logging.getLogger(__name__)
MANIFEST = "report/examples.json"
PAGE = "report.html"
SCORE_KEYS = (*METRICS, "skipped")
SPEC_DPI = 80


def slug(text: str) -> str:
    """A file-name-safe form of a system or file name ('unet/best' -> 'unet-best')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def _scores(row: dict | None) -> dict | None:
    """A row's metrics for JSON: NaN (a skipped metric) becomes null."""
    if row is None:
        return None
    number = lambda v: float(v) if v is not None and math.isfinite(float(v)) else None  # noqa: E731
    return {k: row[k] if k == "skipped" else number(row[k]) for k in SCORE_KEYS if k in row}


def clip_roles(example) -> list[tuple[str, str, str, np.ndarray, dict | None]]:
    """(key, label, role, wave, scores) per clip of an example, in page order: the original,
    the gapped input, then each system. The 'zero' system's output is the gapped input
    itself, so its scores go on the input's card instead of a second identical card."""
    waves, scores = example.waves, example.scores
    zero = "zero" in waves and np.array_equal(waves["zero"], waves["gapped"])
    clips = [("original", "original", "original", waves["original"], None),
             ("gapped", "gapped input (zero fill)" if zero else "gapped input", "input", waves["gapped"],
              _scores(scores.get("zero")) if zero else None)]
    return clips + [(name, name, "system", w, _scores(scores.get(name))) for name, w in waves.items()
                    if name not in ("original", "gapped") and not (zero and name == "zero")]


def save_examples(examples: list, audio, folder: Path, context_s: float | None = None) -> Path:
    """Write each example's excerpts as 16-bit wavs under ``folder/audio/`` and the
    manifest ``folder/examples.json``; returns the manifest's path.

    ``examples``: training.evaluation.evaluate.Example (waves cropped around the gap, scores per
    system); ``audio``: the AudioConfig the waves are at (its rate, and the Mel settings
    the spectrograms are drawn with). Paths in the manifest are relative to ``folder``.
    """
    sr = audio.sample_rate
    shutil.rmtree(folder / "audio", ignore_errors=True)     # an earlier run's clips are not this page's
    entries = []
    for i, ex in enumerate(examples):
        ex_id = f"{i + 1:02d}-{slug(ex.file)}-{ex.gap_ms:g}ms"
        clips = []
        for j, (key, label, role, wave, scores) in enumerate(clip_roles(ex)):
            rel = f"audio/{ex_id}/{j:02d}-{slug(key)}.wav"
            # Clipped first: a fill can overshoot full scale, which 16-bit PCM cannot hold.
            write_audio(folder / rel, np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), sr, subtype="PCM_16")
            clips.append({"name": label, "role": role, "wav": rel, "scores": scores})
        entries.append({"id": ex_id, "file": ex.file, "gap_ms": ex.gap_ms, "start_s": ex.offset / sr,
                        "gap_s": [ex.gap[0] / sr, ex.gap[1] / sr], "clips": clips})
    manifest = {"version": 1, "sample_rate": sr, "context_s": context_s,
                "audio": dataclasses.asdict(audio), "examples": entries}
    path = folder / "examples.json"
    write_text_atomic(path, json.dumps(manifest, indent=1, ensure_ascii=False))
    return path


def earlier_results(out: Path) -> list[Path]:
    """The files and folders under ``out`` that an evaluation writes (an earlier run's, or the
    user's own under the same names): replacing any of them needs consent. Other files in
    ``out`` are never touched."""
    names = ("metrics.csv", "summary.md", SUMMARY_DATA, PAGE, MANIFEST, "report/audio", "report/spec")
    plots = out / "plots"
    return [out / n for n in names if (out / n).exists()] + sorted(plots.glob("metrics_vs_gap.png")) + \
        sorted(plots.glob("example_*.png"))


def clear_results(out: Path) -> None:
    """Remove :func:`earlier_results` (nothing else), so that a replaced run leaves no stale
    page or plot; ``plots/`` and ``report/`` go too if that leaves them empty."""
    for path in earlier_results(out):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for folder in (out / "plots", out / "report"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def write_report(out: Path, rows: list[dict], examples: list, systems: list[str], gap_ms: list[float],
                 cfg, header: list[str], paired_against: str | None = None) -> dict[str, Path]:
    """metrics.csv, summary.md (and its data, summary.json, for the HTML report; with each system
    paired against the system ``paired_against`` when it is one of ``systems``),
    plots/metrics_vs_gap.png, plots/example_*.png and the examples' excerpts for the listening
    report (report/examples.json, report/audio/) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    paths = {"csv": out / "metrics.csv", "summary": out / "summary.md", "summary_data": out / SUMMARY_DATA,
             "plot": out / "plots" / "metrics_vs_gap.png"}
    write_csv(rows, paths["csv"])
    pairs = (paired_against, paired(rows, paired_against)) if paired_against in systems and len(systems) > 1 else None
    document = summary_document(summary, systems, gap_ms, header, pairs)
    write_text_atomic(paths["summary"], markdown(document))
    write_text_atomic(paths["summary_data"], json.dumps(document, ensure_ascii=False, indent=1))
    plot_metrics(summary, systems, gap_ms, paths["plot"])
    plot_examples(examples, cfg, out / "plots")
    paths["examples"] = save_examples(examples, cfg.audio, out / "report", EXAMPLE_CONTEXT_S)
    return paths


def load_manifest(out: Path) -> dict:
    """``out/report/examples.json``; UserError naming the folder when there is none."""
    path = Path(out) / MANIFEST
    if not Path(out).is_dir():
        raise UserError(f"results folder not found: {out}")
    if not path.is_file():
        raise UserError(f"{out}: no {MANIFEST} (written by scripts/evaluate.py; re-run the evaluation "
                        "with this version to keep the example excerpts)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a valid examples manifest ({exc})") from None


def spectrogram_png(mel: np.ndarray, seconds: float, start_s: float, gap_s: tuple[float, float],
                    path: Path) -> None:
    """A small Mel image (normalised log-Mel (n_mels, T) over ``seconds``), x in seconds of the
    clip from ``start_s``, the gap between dashed cyan lines (the colours of training.figures)."""
    from training.figures import plt, save_figure
    fig = plt.figure(figsize=(SPEC_PX[0] / SPEC_DPI, SPEC_PX[1] / SPEC_DPI))
    ax = fig.add_axes((0.0, 0.18, 1.0, 0.82))
    ax.imshow(mel, origin="lower", aspect="auto", vmin=0.0, vmax=1.0, cmap="magma",
              extent=[start_s, start_s + seconds, 0, mel.shape[0]])
    for t in gap_s:
        ax.axvline(start_s + t, color="cyan", lw=1.0, ls="--")
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=7, pad=1, length=2)
    ax.set_xlabel("time in the clip (s)", fontsize=7, labelpad=1)
    save_figure(fig, path, SPEC_DPI)


def draw_spectrograms(manifest: dict, folder: Path) -> None:
    """A PNG per clip under ``folder/spec/`` (adds 'png' to each clip of ``manifest``)."""
    from processors.mel import MelSpectrogram
    from processors.core.config import AudioConfig
    audio = AudioConfig(**manifest["audio"])
    mel_fn = MelSpectrogram(audio)
    shutil.rmtree(folder / "spec", ignore_errors=True)
    for ex in manifest["examples"]:
        for clip in ex["clips"]:
            samples, sr = read_audio(folder / clip["wav"])
            wave = samples.mean(axis=1)
            mel = log_mel(mel_fn, wave)
            clip["png"] = f"spec/{ex['id']}/{Path(clip['wav']).stem}.png"
            spectrogram_png(mel, len(wave) / sr, ex["start_s"], tuple(ex["gap_s"]), folder / clip["png"])


def build_report(out: Path, title: str | None = None) -> Path:
    """``out/report.html`` from ``out/report/examples.json`` (plus the summary's data, ``out/summary.json``, and
    ``out/plots/metrics_vs_gap.png`` when they exist); returns the page's path."""
    out = Path(out)
    manifest = load_manifest(out)
    draw_spectrograms(manifest, out / "report")
    summary = out / SUMMARY_DATA
    if not summary.is_file() and (out / "summary.md").is_file():
        log.warning("%s has summary.md but no %s (evaluations before it was written): the page has no "
                    "summary tables; re-run scripts/evaluate.py to add them", out, SUMMARY_DATA)
    plot = out / "plots" / "metrics_vs_gap.png"
    page = page_html(title or f"Listening report: {out.resolve().name}", manifest,
                     json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else None,
                     "plots/metrics_vs_gap.png" if plot.is_file() else None, prefix="report/")
    write_text_atomic(out / PAGE, page)
    return out / PAGE
