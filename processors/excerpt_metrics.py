"""Which whole-signal metrics score an excerpt, per domain (speech or music).

Every metric here scores the **excerpt** around one gap (``processors.metrics.excerpt_bounds``),
never the gap alone and never the whole file, so a score does not depend on how long
the file is. Each is ``fn(ref, est, sr) -> ({column: value}, reason)`` at its own rate
(the caller resamples once per rate); a value it cannot compute is NaN with a reason.
They run in a crash-isolated child process (processors.isolation), hence module-level
functions only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from processors.metrics import EVAL_RATE, pesq_wb, stoi_scores
from processors.speech_mos import MOS_RATE, dnsmos_overall, plcmos
from processors.visqol_metric import VISQOL_RATE, visqol_audio

# Seconds of audio each side of the gap that whole-signal metrics score (eval.excerpt_seconds = 0
# picks these). Speech: 2 s each side, a sentence or so: enough for PESQ's and STOI's
# statistics while one gap still weighs in the score; music: 5 s each side, about the 10 s
# excerpts ViSQOL's audio mode is meant for.
EXCERPT_SECONDS = {"speech": 2.0, "music": 5.0}


@dataclass(frozen=True)
class ExcerptMetric:
    columns: tuple[str, ...]     # what it adds to a row of metrics.csv
    rate: int                    # Hz the signals are given at
    fn: Callable[[np.ndarray, np.ndarray, int], tuple[dict, str]]


def _pesq(ref, est, sr):
    value, why = pesq_wb(ref, est, sr)
    return {"pesq_wb": value}, why


def _plcmos(ref, est, sr):           # non-intrusive: the reference is not used
    value, why = plcmos(est, sr)
    return {"plcmos": value}, why


def _dnsmos(ref, est, sr):           # non-intrusive
    value, why = dnsmos_overall(est, sr)
    return {"dnsmos": value}, why


def _visqol(ref, est, sr):
    value, why = visqol_audio(ref, est, sr)
    return {"visqol": value}, why


EXCERPT_METRICS = {
    "pesq": ExcerptMetric(("pesq_wb",), EVAL_RATE, _pesq),
    "stoi": ExcerptMetric(("stoi", "estoi"), EVAL_RATE, stoi_scores),
    "plcmos": ExcerptMetric(("plcmos",), MOS_RATE, _plcmos),
    "dnsmos": ExcerptMetric(("dnsmos",), MOS_RATE, _dnsmos),
    "visqol": ExcerptMetric(("visqol",), VISQOL_RATE, _visqol),
}
# PESQ, STOI, PLCMOS and DNSMOS are speech models: they say nothing sound about music.
DOMAIN_METRICS = {"speech": ("pesq", "stoi", "plcmos", "dnsmos"), "music": ("visqol",)}
# Gap metrics, computed in-process for every domain (processors.metrics).
GAP_COLUMNS = ("lsd_db", "mel_mse", "mel_snr_db")


def domain_metrics(domain: str, chosen: list[str] | tuple = ()) -> list[str]:
    """The whole-signal metrics to run: ``chosen`` (a subset of the domain's), or all of them."""
    return [m for m in DOMAIN_METRICS[domain] if not chosen or m in chosen]


def domain_columns(domain: str, chosen: list[str] | tuple = ()) -> list[str]:
    """Every metric column a row of ``domain`` holds, in table order."""
    return [*GAP_COLUMNS, *(c for name in domain_metrics(domain, chosen) for c in EXCERPT_METRICS[name].columns)]


def excerpt_seconds(domain: str, seconds: float) -> float:
    """The excerpt's half-width: ``seconds``, or the domain's default when it is 0."""
    return seconds if seconds > 0 else EXCERPT_SECONDS[domain]
