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
    Returns float64 (n_out,); zeros when the context is too short or silent to fit,
    or when the prediction blows up.
    """
    import librosa
    x = np.asarray(context, dtype=np.float64)
    order = min(order, len(x) - 1)
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
    backwards at the end from ``after``. Where the two edges' weights add up to more than 1
    (a short gap) they are scaled to sum to 1: no fill is left there. A fill's own seams are
    smooth but its first milliseconds do not carry on the context's pitch and phase; the
    prediction does, and dies away before the fill's middle. Returns float64 (n,).
    """
    out = np.asarray(piece, dtype=np.float64)
    n = len(out)
    if n == 0 or hold + fade <= 0:
        return out.copy()
    t = np.arange(n) + 0.5

    def weight(x: np.ndarray) -> np.ndarray:          # 1 up to ``hold``, then down to 0 over ``fade``
        r = np.clip((x - hold) / max(fade, 1), 0.0, 1.0)
        return 0.5 + 0.5 * np.cos(np.pi * r)
    wf = weight(t) if len(before) else np.zeros(n)          # no context, nothing to continue
    wb = weight(n - t) if len(after) else np.zeros(n)
    total = wf + wb
    wf, wb = (np.where(total > 1, w / np.maximum(total, 1e-12), w) for w in (wf, wb))
    mix = (1.0 - wf - wb) * out
    if len(before):
        mix += wf * lpc_extrapolate(before, order, n)
    if len(after):
        mix += wb * lpc_extrapolate(np.asarray(after)[::-1], order, n)[::-1]
    return mix
