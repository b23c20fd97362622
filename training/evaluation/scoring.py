"""Scoring one filled gap: the gap metrics, and the domain's whole-signal metrics on the excerpt.

Everything is computed on a stretch around the gap (processors.metrics.excerpt_bounds), never
on the whole file: scores do not depend on the file's length and memory does not grow with it.
The whole-signal metrics (PESQ, STOI, PLCMOS, DNSMOS, ViSQOL) score the **excerpt** of
``eval.excerpt_seconds`` each side; the gap metrics (LSD, Mel MSE, Mel SNR) always see
``GAP_METRIC_SECONDS`` each side, whatever the excerpt, because their STFT frame grid and
LSD's floor (80 dB below the reference's peak) follow the stretch they are given: a gap's
LSD must not move when --excerpt-seconds does. Gap metrics are our own code and run
in-process; the whole-signal metrics call native libraries and run in a crash-isolated child
process, so a crash there is a NaN with its reason.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from processors.audio_io import resample
from processors.core.errors import UserError
from processors.excerpt_metrics import DOMAIN_METRICS, EXCERPT_METRICS, domain_columns, domain_metrics, excerpt_seconds
from processors.isolation import CrashIsolation
from processors.mel import log_mel
from processors.metrics import centre_frames, excerpt_bounds, log_spectral_distance, mel_mse, mel_snr_db

GAP_METRIC_SECONDS = 2.0    # the stretch each side of a gap that its gap metrics see (speech's excerpt)


def with_eval(cfg, domain: str | None = None, seconds: float | None = None, metrics: list[str] | None = None):
    """``cfg`` with ``eval.domain`` / ``eval.excerpt_seconds`` / ``eval.metrics`` replaced where given
    (the command line's --domain / --excerpt-seconds / --metrics); UserError for an unknown domain,
    seconds <= 0 or a metric the domain does not have."""
    if domain is not None and domain not in DOMAIN_METRICS:
        raise UserError(f"--domain {domain!r}: unknown (known: {', '.join(sorted(DOMAIN_METRICS))})")
    if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
        raise UserError(f"--excerpt-seconds {seconds:g}: must be a positive number of seconds")
    changes = {k: v for k, v in (("domain", domain), ("excerpt_seconds", seconds), ("metrics", metrics))
               if v is not None}
    if domain is not None and metrics is None:      # the config's choice was for its own domain
        changes["metrics"] = []
    ev = dataclasses.replace(cfg.eval, **changes)
    unknown = [m for m in ev.metrics if m not in DOMAIN_METRICS[ev.domain]]
    if unknown:
        raise UserError(f"--metrics {unknown[0]!r}: not a {ev.domain} metric (known: {', '.join(DOMAIN_METRICS[ev.domain])})")
    return dataclasses.replace(cfg, eval=ev)


@dataclass
class Reference:
    """The original around one gap, prepared once for every system: ``span`` (what
    :meth:`Scorer.span` cut from the file) holds the gap metrics' stretch and the excerpt."""
    gap: tuple[int, int]             # the gap, in samples of the span
    near: slice                      # the gap metrics' stretch, in samples of the span
    excerpt: slice                   # the whole-signal metrics' excerpt, in samples of the span
    wave: np.ndarray                 # (G,) the gap metrics' stretch of the original, at the model's rate
    mel: np.ndarray                  # its normalised log-Mel (n_mels, G // hop + 1)
    at_rate: dict                    # rate (Hz) -> the excerpt resampled for the metrics run at it


class Scorer:
    """Scores filled excerpts against their originals with every metric of ``cfg.eval.domain``.

    ``runner`` is where the whole-signal metrics run (one child process for the whole
    evaluation, so loaded models stay warm).
    """

    def __init__(self, cfg, mel_fn, runner: CrashIsolation):
        self.cfg, self.mel_fn, self.runner = cfg, mel_fn, runner
        self.metrics = [(name, EXCERPT_METRICS[name]) for name in domain_metrics(cfg.eval.domain, cfg.eval.metrics)]
        self.columns = domain_columns(cfg.eval.domain, cfg.eval.metrics)
        self.seconds = excerpt_seconds(cfg.eval.domain, cfg.eval.excerpt_seconds)

    def span(self, gap: tuple[int, int], n_samples: int) -> tuple[int, int]:
        """Samples [lo, hi) of a file of ``n_samples`` that scoring ``gap`` needs: the excerpt
        and the gap metrics' stretch, whichever is wider, cut at the file's ends."""
        return excerpt_bounds(gap, n_samples, self.cfg.audio.sample_rate, max(self.seconds, GAP_METRIC_SECONDS))

    def reference(self, span: np.ndarray, gap: tuple[int, int]) -> Reference:
        """``span`` (L,) of the original at the model's rate, as :meth:`span` cut it, with
        ``gap`` in its samples -> its Reference."""
        sr = self.cfg.audio.sample_rate
        # the file's ends cut the span and both stretches alike, so cutting them from the span
        # gives what cutting them from the file would
        near, excerpt = (slice(*excerpt_bounds(gap, len(span), sr, side)) for side in (GAP_METRIC_SECONDS, self.seconds))
        wave = span[near]
        return Reference(gap, near, excerpt, wave, log_mel(self.mel_fn, wave),
                         {m.rate: resample(span[excerpt], sr, m.rate) for _, m in self.metrics})

    def score(self, ref: Reference, filled: np.ndarray) -> dict:
        """Every metric of one filled span (L,) against ``ref`` (the same samples of the file).
        'skipped' holds the reasons a metric could not be computed (its value is then NaN)."""
        a = self.cfg.audio
        near = filled[ref.near]
        gap = (ref.gap[0] - ref.near.start, ref.gap[1] - ref.near.start)
        est_mel = log_mel(self.mel_fn, near)
        f0, f1 = centre_frames(gap[0], gap[1], a.hop_length, ref.mel.shape[1])
        row = {"lsd_db": log_spectral_distance(ref.wave, near, gap, a.sample_rate, a.n_fft, a.win_length,
                                               a.hop_length, a.f_max),
               "mel_mse": mel_mse(ref.mel[:, f0:f1], est_mel[:, f0:f1]),
               "mel_snr_db": mel_snr_db(ref.mel[:, f0:f1], est_mel[:, f0:f1])}
        filled = filled[ref.excerpt]
        est_at = {rate: resample(filled, a.sample_rate, rate) for rate in ref.at_rate}
        reasons = ["mel_snr_db: the reference's gap is digital silence"] if math.isnan(row["mel_snr_db"]) else []
        for name, metric in self.metrics:
            result, error = self.runner.call(metric.fn, ref.at_rate[metric.rate], est_at[metric.rate], metric.rate)
            values, why = ({c: math.nan for c in metric.columns}, f"{name}: {error}") if error else result
            row.update(values)
            reasons += [why] if why else []
        return {**row, "skipped": "; ".join(reasons)}


def score_gap(original: np.ndarray, fills: dict, gap: tuple[int, int], cfg, mel_fn) -> dict[str, dict]:
    """Every metric of each fill ``{name: (N,)}`` of ``original`` (N,) on ``gap`` (samples), on the
    excerpt around it; for one-off scoring (it starts and ends its own metric process)."""
    with CrashIsolation(threads=torch.get_num_threads()) as runner:
        scorer = Scorer(cfg, mel_fn, runner)
        lo, hi = scorer.span(gap, len(original))
        ref = scorer.reference(original[lo:hi], (gap[0] - lo, gap[1] - lo))
        return {name: scorer.score(ref, wave[lo:hi]) for name, wave in fills.items()}
