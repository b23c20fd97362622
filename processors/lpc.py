"""Waveform-domain gap filling by linear prediction (autoregressive extrapolation).

The classical baseline of audio inpainting: fit an all-pole model to the context
on each side of the gap, let it run freely into the gap (forward from the left,
backward from the right), and cross-fade the two predictions across the gap.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

DITHER = 1e-5   # relative amplitude of the regularising noise (-100 dB)
# The LPC baseline and a fill's edges: on LJSpeech-mini (50 and 200 ms gaps) a long predictor
# over ~100 ms of context gave the lowest LSD (it spans several pitch periods); orders of 16-64
# samples were 2-4 dB worse.
LPC_CONTEXT_MS = 100.0
LPC_ORDER_MS = 40.0


def lpc_extrapolate(context: np.ndarray, order: int, n_out: int) -> np.ndarray:
    """Continue ``context`` (N,) by ``n_out`` samples with an order-``order`` linear predictor.

    The coefficients come from Burg's method (``librosa.lpc``) on the whole context,
    with white noise 100 dB below it added first: on perfectly predictable input (pure
    tones) Burg's error terms vanish and its filter turns unstable. The predictor
    ``x[n] = -sum_k a[k] x[n-k]`` then runs on zero input from the context's last
    ``order`` samples (``scipy.signal.lfilter`` with initial state).
    A context shorter than twice ``order`` gets an order of half its length: Burg's
    estimate over barely more samples than coefficients is ill-conditioned (it blows up).
    Returns float64 (n_out,); zeros when the context is too short or silent to fit,
    or when the prediction blows up.
    """
    import librosa
    x = np.asarray(context, dtype=np.float64)
    order = min(order, len(x) // 2)
    if n_out <= 0:
        return np.zeros(0)
    if order < 1 or not np.any(x):
        return np.zeros(n_out)
    rms = np.sqrt(np.mean(x ** 2))
    dithered = x + DITHER * rms * np.random.default_rng(0).standard_normal(len(x))
    try:
        a = librosa.lpc(dithered, order=order)
    except FloatingPointError:     # ill-conditioned (e.g. digital silence with a few clicks)
        return np.zeros(n_out)
    if not np.all(np.isfinite(a)):
        return np.zeros(n_out)
    # the filter state that "has just produced" the context's tail, newest sample first
    zi = scipy.signal.lfiltic([1.0], a, x[::-1][:order])
    out, _ = scipy.signal.lfilter([1.0], a, np.zeros(n_out), zi=zi)
    # a stable predictor only decays or rings on; anything far louder than its context is numerical
    if not np.all(np.isfinite(out)) or np.max(np.abs(out)) > 4 * np.max(np.abs(x)):
        return np.zeros(n_out)
    return out


def lpc_fill(left: np.ndarray, right: np.ndarray, n_gap: int, order: int) -> np.ndarray:
    """Fill of ``n_gap`` samples between ``left`` (context before, (L,)) and ``right``
    (context after, (R,)): the forward prediction from ``left`` fades out while the
    backward prediction from ``right`` fades in (raised-cosine weights summing to 1).
    Returns float64 (n_gap,).
    """
    forward = lpc_extrapolate(left, order, n_gap)
    backward = lpc_extrapolate(np.asarray(right)[::-1], order, n_gap)[::-1]
    w = 0.5 + 0.5 * np.cos(np.pi * (np.arange(n_gap) + 0.5) / max(n_gap, 1))   # 1 -> 0
    return w * forward + (1.0 - w) * backward


def lpc_edges(piece: np.ndarray, before: np.ndarray, after: np.ndarray, hold: int, fade: int,
              order: int) -> np.ndarray:
    """``piece`` (n,), a gap's fill, joined to its context by linear prediction: its first
    ``hold`` samples are the forward continuation of ``before`` (the context's last samples),
    which then cross-fades (raised cosine) into ``piece`` over ``fade`` samples; the same
    backwards at the end from ``after``. A gap shorter than twice ``hold + fade`` shrinks
    both in proportion to half its length, so each seam stays its own side's prediction (the
    other side's would not continue it).
    Why: a fill's own seams are smooth, but its first milliseconds do not carry on the
    context's pitch and phase; the prediction does, and dies away before the fill's middle.
    Returns float64 (n,).
    """
    out = np.asarray(piece, dtype=np.float64).copy()
    n = len(out)
    if hold + fade > n // 2:
        hold = round(hold * (n // 2) / (hold + fade))
        fade = n // 2 - hold
    span = hold + fade
    if span <= 0:
        return out
    x = np.arange(span) + 0.5
    w = 0.5 + 0.5 * np.cos(np.pi * np.clip((x - hold) / max(fade, 1), 0.0, 1.0))   # 1 for hold, then -> 0
    forward = lpc_extrapolate(before, order, span)
    backward = lpc_extrapolate(np.asarray(after)[::-1], order, span)
    # no context, or no prediction from one that has sound (too short to fit, unstable): keep
    # the fill; a silent context predicts silence, rightly
    if len(before) and (forward.any() or not np.any(before)):
        out[:span] = w * forward + (1 - w) * out[:span]
    if len(after) and (backward.any() or not np.any(after)):
        out[n - span:] = (w * backward + (1 - w) * out[::-1][:span])[::-1]
    return out


def lpc_sizes(sr: int) -> tuple[int, int]:
    """(context, order) in samples at rate ``sr``: :data:`LPC_CONTEXT_MS`, :data:`LPC_ORDER_MS`."""
    return round(LPC_CONTEXT_MS * sr / 1000), round(LPC_ORDER_MS * sr / 1000)
