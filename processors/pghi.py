"""Phase-gradient heap integration (PGHI; Prusa, Balazs, Sondergaard, IEEE/ACM TASLP 25(5), 2017).

Given the STFT magnitude and the phase's derivatives along time and frequency, the phase is
their integral over the time-frequency plane. PGHI integrates along the path that matters:
it starts at the loudest bin and always continues from the loudest bin reached so far (a
max-heap), so the phase flows from strong bins to weak ones and errors in the noise
floor never reach the partials. Bins more than ``tol_db`` below the peak are not
integrated (random phase); when the heap runs dry the loudest bin left starts a new
region at phase 0. The phase is that of numpy's STFT (each frame referred to its first
sample; processors.reassigned).

The derivatives come either from the reassigned spectrogram (processors.reassigned.
phase_gradients: exact up to the analysis' own approximations) or, without it, from the
magnitude alone: for a Gaussian window exp(-pi t^2 / lambda) the log-magnitude and the
phase are conjugate harmonic functions, so (with x in samples, xi in cycles per sample)

    d phi / d x  = 2 pi xi + (1 / lambda) d log|S| / d xi,
    d phi / d xi = -lambda d log|S| / d x  - 2 pi c     (c: window centre from the frame start)

and other windows use the Gaussian of the same time spread (:func:`gaussian_lambda`).
"""
from __future__ import annotations

import heapq

import numpy as np


def gaussian_lambda(window: np.ndarray) -> float:
    """lambda (samples^2) of the Gaussian exp(-pi t^2 / lambda) whose energy has the window's
    time variance (lambda / (4 pi)); for Hamming, 0.294 L^2 (Prusa et al. fit 0.298 L^2)."""
    t = np.arange(len(window)) - len(window) / 2
    energy = window ** 2
    return float(4 * np.pi * np.sum(energy * t ** 2) / np.sum(energy))


def magnitude_gradients(mags: np.ndarray, window: np.ndarray, hop: int, floor_db: float = 110.0
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Phase derivatives estimated from the magnitude alone (PGHI's own estimate).

    mags (F, T) linear, F = n_fft // 2 + 1; window (n_fft,). Returns (dphi_dm, dphi_dk):
    radians per frame and per bin, (F, T) each. The log-magnitude is floored ``floor_db``
    below its peak so that silence does not produce huge slopes.
    """
    n_fft = len(window)
    lam = gaussian_lambda(window)
    peak = max(float(mags.max()), 1e-30)
    log = np.log(np.maximum(mags, peak * 10 ** (-floor_db / 20)))
    d_bin = np.gradient(log, axis=0) if log.shape[0] > 1 else np.zeros_like(log)     # per bin
    d_frame = np.gradient(log, axis=1) if log.shape[1] > 1 else np.zeros_like(log)   # per frame
    k = np.arange(mags.shape[0])[:, None]
    dphi_dm = hop * (2 * np.pi * k / n_fft + d_bin * n_fft / lam)
    dphi_dk = -lam * d_frame / (hop * n_fft) - 2 * np.pi * (n_fft / 2) / n_fft
    return dphi_dm, dphi_dk


def heap_integrate(mags: np.ndarray, dphi_dm: np.ndarray, dphi_dk: np.ndarray, tol_db: float = 100.0,
                   seed: int = 0) -> np.ndarray:
    """The phase (F, T), radians, whose derivatives are ``dphi_dm`` (per frame) and ``dphi_dk``
    (per bin), integrated by the trapezoid rule in order of decreasing magnitude.

    mags, dphi_dm, dphi_dk: (F, T). Bins below peak - ``tol_db`` get uniform random phase
    (seeded). Each connected region of the rest is exact up to one constant, which is
    unknowable from derivatives: each region starts at phase 0 at its loudest bin.
    """
    F, T = mags.shape
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(F, T))
    peak = float(mags.max()) if mags.size else 0.0
    if peak <= 0:
        return phase
    todo = (mags > peak * 10 ** (-tol_db / 20)).ravel()
    # flat, Python-native arrays: element access from the loop is ~10x faster than numpy's
    mag = (-mags).ravel().tolist()                 # heapq is a min-heap
    dm, dk = dphi_dm.ravel().tolist(), dphi_dk.ravel().tolist()
    out = phase.ravel().tolist()
    undone = todo.tolist()
    order = np.argsort(-mags.ravel(), kind="stable")[:int(todo.sum())].tolist()
    heap: list[tuple[float, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    for start in order:
        if not undone[start]:
            continue
        undone[start] = False
        out[start] = 0.0
        heap.append((mag[start], start))
        while heap:
            _, i = pop(heap)
            k, m = divmod(i, T)
            p = out[i]
            # the four neighbours: next and previous frame, next and previous bin
            for j, inside, step in ((i + 1, m + 1 < T, dm), (i - 1, m > 0, dm), (i + T, k + 1 < F, dk),
                                    (i - T, k > 0, dk)):
                if inside and undone[j]:
                    half = 0.5 * (step[i] + step[j])
                    out[j] = p + half if j > i else p - half
                    undone[j] = False
                    push(heap, (mag[j], j))
    return np.asarray(out).reshape(F, T)


def anchor_rotation(phase: np.ndarray, mags: np.ndarray, dphi_dk: np.ndarray, nyquist: bool, smooth: int = 21,
                    floor_db: float = 50.0, leak_db: float = 30.0, agreement: float = 0.3) -> np.ndarray:
    """``phase`` (F, T) with each frame's bins 1.. rotated so that the 0 Hz bin, real for a real
    signal, is consistent with bin 1 through the group delay; returns a new array.

    Derivatives fix the phase only up to a constant per region, and integration errors let that
    constant drift: where two integration fronts with different drifts meet inside voiced
    speech, Griffin-Lim-type iterations settle on opposite signs on the two sides with a
    rotating seam between them, which PESQ punishes hard (random rotations every 50 ms cost
    2.5 PESQ points; the same every 200 ms with 25 ms seams cost 0.4). The 0 Hz bin pins the
    rotation modulo pi wherever it and bin 1 hold energy (within ``floor_db`` of the loudest
    such frame, and within ``leak_db`` of their own frame's loudest bin: less is the window's
    leakage from far bins, whose phase says nothing): the deviation is smoothed over ``smooth``
    frames (a weighted circular mean of the doubled angle, kept where its resultant length
    reaches ``agreement``), unwrapped with period pi across time and removed, so the drift
    becomes a multiple of pi that changes only where bins 0 and 1 are silent. The 0 Hz bin
    (and the last bin when it is Nyquist: ``nyquist``, n_fft even) then get the sign nearest
    their neighbour's phase.
    """
    phase = phase.copy()
    F, T = phase.shape
    if F < 3:
        return phase
    predicted = phase[1] - 0.5 * (dphi_dk[0] + dphi_dk[1])           # what 0 Hz should read, mod pi
    weight = mags[0] * mags[1]
    reliable = ((weight > weight.max() * 10 ** (-floor_db / 10)) & (weight > mags.max(axis=0) ** 2 * 10 ** (-leak_db / 10))
                if weight.max() > 0 else np.zeros(T, bool))
    if reliable.any():
        kernel = np.ones(max(1, smooth))
        summed = np.convolve(np.where(reliable, weight * np.exp(2j * predicted), 0), kernel, "same")
        total = np.convolve(np.where(reliable, weight, 0.0), kernel, "same")
        # frames whose neighbourhood agrees on the angle (mean resultant length): where it
        # scatters, it is noise, and unwrapping through it could slip by pi
        frames = np.flatnonzero(np.abs(summed) > agreement * np.maximum(total, 1e-300))
        drift = np.unwrap(np.angle(summed[frames])) / 2                # period pi, continuous in time
        if len(frames):
            phase[1:] -= np.interp(np.arange(T), frames, drift)[None, :]
    edges = [(0, 1, -1)] + ([(F - 1, F - 2, 1)] if nyquist else [])   # (real bin, neighbour, direction)
    for edge, near, direction in edges:
        carried = phase[near] + direction * 0.5 * (dphi_dk[edge] + dphi_dk[near])
        phase[edge] = np.where(np.cos(carried) < 0, np.pi, 0.0)
    return phase


def pghi(mags: np.ndarray, dphi_dm: np.ndarray, dphi_dk: np.ndarray, n_fft: int, tol_db: float = 100.0,
         seed: int = 0) -> np.ndarray:
    """PGHI for the STFT of a real signal: heap integration of the bins strictly between 0 Hz and
    Nyquist (those two are real: their phase jumps between 0 and pi and has no derivative to
    integrate), then :func:`anchor_rotation`. mags, dphi_dm, dphi_dk: (F, T), F = n_fft // 2 + 1
    (the last bin is Nyquist for an even n_fft)."""
    F = mags.shape[0]
    nyquist = n_fft % 2 == 0
    inner = slice(1, F - 1) if nyquist else slice(1, F)
    phase = np.zeros(mags.shape)
    if F > 2:
        phase[inner] = heap_integrate(mags[inner], dphi_dm[inner], dphi_dk[inner], tol_db, seed)
    return anchor_rotation(phase, mags, dphi_dk, nyquist)
