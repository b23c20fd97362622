"""Reassigned spectrogram -> waveform: the inversion methods, and analyse-then-rebuild for a whole wave.

Every method is ``fn(r, rc, seed) -> wave``: r the reassigned spectrogram
(processors.reassigned.Reassigned, checked against the settings ``rc``, the config's
``reassigned`` section), the wave spanning its frames. ``rc.method`` picks one of
:data:`INVERSIONS` and ``rc.n_iter`` its iterations:

- ``pghi_reassigned`` (default): PGHI from the phase derivatives the reassignment holds,
  then ``n_iter`` iterations of reassigned Griffin-Lim (processors.reassigned_gl), with a
  sign-flip repair after two thirds of them;
- ``pghi_reassigned_gl``: the same start, then plain Griffin-Lim (the magnitude alone);
- ``pghi_magnitude``: PGHI from the magnitude alone (its Gaussian-window estimate of the
  derivatives), then ``n_iter`` plain Griffin-Lim iterations (0: PGHI alone);
- ``griffinlim``: fast Griffin-Lim from random phase, the magnitude alone;
- ``learned`` (models.reassigned_net, registered when that module is imported): the
  classical one after its net's ``classical_iter`` iterations, a learned phase correction,
  then ``n_iter`` iterations.
"""
from __future__ import annotations

import time

import numpy as np

from processors.core.errors import UserError
from processors.core.registry import Registry
from processors.pghi import magnitude_gradients, pghi
from processors.reassigned import (Reassigned, analysis_window, check_reassigned, phase_gradients,
                                   reassigned_spectrogram)
from processors.reassigned_gl import fix_sign_flips, griffin_lim, reassigned_griffin_lim

INVERSIONS = Registry("inversion")   # name -> fn(reassigned, rc, seed) -> wave


inversion = INVERSIONS.register


def phase_derivatives(r: Reassigned, rc, from_reassignment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The phase derivatives PGHI integrates, radians per frame and per bin (F, T each): the
    reassignment's where the analysis defines it and the magnitude's estimate elsewhere, or
    the magnitude's alone."""
    est_dm, est_dk = magnitude_gradients(r.mags, analysis_window(rc), rc.hop_length)
    if not from_reassignment:
        return est_dm, est_dk
    dm, dk, no_freq, no_time = phase_gradients(r, rc)
    return np.where(no_freq, est_dm, dm), np.where(no_time, est_dk, dk)


def pghi_phase(r: Reassigned, rc, from_reassignment: bool = True, seed: int = 0) -> np.ndarray:
    """The PGHI phase (F, T) from :func:`phase_derivatives`."""
    return pghi(r.mags, *phase_derivatives(r, rc, from_reassignment), rc.n_fft, rc.tol_db, seed)


def reassigned_iterations(r: Reassigned, rc, phase: np.ndarray, n_iter: int) -> np.ndarray:
    """``n_iter`` reassigned Griffin-Lim iterations from ``phase``, the sign-flip repair after
    two thirds of them (a flip left to the last iterations would leave its seam)."""
    first = (2 * n_iter) // 3
    wave = reassigned_griffin_lim(r, rc, first, rc.momentum, phase=phase)
    if n_iter > 0:
        wave, _ = fix_sign_flips(wave, r, rc)
        wave = reassigned_griffin_lim(r, rc, n_iter - first, rc.momentum, wave=wave)
    return wave


@inversion("pghi_reassigned")
def _pghi_reassigned(r: Reassigned, rc, seed: int = 0) -> np.ndarray:
    return reassigned_iterations(r, rc, pghi_phase(r, rc, True, seed), rc.n_iter)


@inversion("pghi_reassigned_gl")
def _pghi_reassigned_gl(r: Reassigned, rc, seed: int = 0) -> np.ndarray:
    return griffin_lim(r.mags, pghi_phase(r, rc, True, seed), rc, rc.n_iter)


@inversion("pghi_magnitude")
def _pghi_magnitude(r: Reassigned, rc, seed: int = 0) -> np.ndarray:
    return griffin_lim(r.mags, pghi_phase(r, rc, False, seed), rc, rc.n_iter)


@inversion("griffinlim")
def _griffinlim(r: Reassigned, rc, seed: int = 0) -> np.ndarray:
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, r.mags.shape)
    return griffin_lim(r.mags, phase, rc, rc.n_iter)


def invert(r, rc, seed: int = 0) -> np.ndarray:
    """The wave rebuilt from reassigned spectrogram ``r`` by ``rc.method`` (UserError for an
    unknown method or a spectrogram the settings do not fit)."""
    return INVERSIONS.lookup(rc.method, "reassigned.method")(check_reassigned(r, rc), rc, seed)


def edge_padding(n_samples: int, rc) -> tuple[int, int]:
    """Zeros (before, after) that give the first and last samples of a wave of ``n_samples``
    every frame an inner sample has (n_fft - hop on each side, and after them up to a whole
    hop), so that its edges are rebuilt as well as its middle."""
    before = rc.n_fft - rc.hop_length
    return before, before + (-(n_samples + 2 * before - rc.n_fft)) % rc.hop_length


def analyse(wave: np.ndarray, rc) -> tuple[Reassigned, tuple[int, int]]:
    """wave (N,) at ``rc.sample_rate`` -> its reassigned spectrogram after :func:`edge_padding`,
    and that padding."""
    pad = edge_padding(len(wave), rc)
    return reassigned_spectrogram(np.pad(np.asarray(wave, dtype=np.float64), pad), rc.sample_rate, rc), pad


def roundtrip(wave: np.ndarray, rc, seed: int = 0) -> tuple[np.ndarray, float]:
    """Analyse ``wave`` (N,) at ``rc.sample_rate`` and rebuild it from its reassigned spectrogram
    alone with ``rc.method``: the rebuilt wave (N,) and the seconds the inversion took."""
    r, (before, _) = analyse(wave, rc)
    start = time.perf_counter()
    out = invert(r, rc, seed)
    seconds = time.perf_counter() - start
    out = np.pad(out, (0, max(0, before + len(wave) - len(out))))
    return out[before:before + len(wave)], seconds


def rebuild_audio(samples: np.ndarray, sample_rate: int, rc, seed: int = 0) -> np.ndarray:
    """Every channel of ``samples`` (N, C) at ``sample_rate`` resampled to ``rc.sample_rate``,
    rebuilt from its reassigned spectrogram alone (:func:`roundtrip`) and resampled back:
    (N, C) at ``sample_rate``. UserError when a channel is too short for one frame."""
    from processors.audio_io import resample
    out = np.zeros(samples.shape, dtype=np.float64)
    for c in range(samples.shape[1]):
        wave = resample(samples[:, c].astype(np.float32), sample_rate, rc.sample_rate).astype(np.float64)
        if len(wave) < rc.n_fft:
            raise UserError(f"audio of {samples.shape[0]} samples at {sample_rate} Hz is shorter than one frame "
                            f"(reassigned.n_fft {rc.n_fft} at {rc.sample_rate} Hz)")
        rebuilt, _ = roundtrip(wave, rc, seed)
        back = resample(rebuilt.astype(np.float32), rc.sample_rate, sample_rate)
        out[:, c] = np.pad(back, (0, max(0, samples.shape[0] - len(back))))[:samples.shape[0]]
    return out
