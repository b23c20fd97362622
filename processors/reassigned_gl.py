"""Griffin-Lim iterations for a reassigned spectrogram: plain, and held to the reassignment too.

Plain Griffin-Lim (fast, with momentum; Perraudin et al. 2013) keeps the magnitude and
looks for a consistent phase. The reassigned spectrogram holds more than the magnitude:
librosa computes it from three STFTs of one signal, with the window h, its derivative dh
and the time-weighted t h, and per bin the reassignment fixes

    Im(S_dh / S_h) = 2 pi (k / n_fft - f_hat / sr)      (radians per sample)
    Re(S_th / S_h) = t_hat sr - frame time sr            (samples)

:func:`reassigned_griffin_lim` alternates two projections, as Griffin-Lim does: from the
signal to the nearest triple (S_h, S_dh, S_th) that has the given magnitude and
reassignments (per bin a one-dimensional minimisation over the phase of S_h; the parts the
reassignment leaves free, Re(S_dh / S_h) and Im(S_th / S_h), are kept from the signal), and
back to the signal that fits the three STFTs best in least squares (overlap-add over the
three windows, each scaled to unit energy). A reassignment the analysis did not define
(processors.reassigned.undefined_bins) drops out of its bin's projection.

:func:`fix_sign_flips` removes the other defect these iterations cannot: a stretch of
signal that converged to minus the truth next to one that did not.
"""
from __future__ import annotations

import numpy as np

from processors.reassigned import (Reassigned, analysis_window, frame_starts, istfts, reassignment_windows,
                                   signal_length, stfts, undefined_bins)


def unit_windows(rc) -> np.ndarray:
    """The three reassignment windows (3, n_fft), each scaled to unit energy, so that the least-
    squares synthesis weighs the three STFTs alike."""
    windows = reassignment_windows(rc)
    return windows / np.linalg.norm(windows, axis=1, keepdims=True)


def griffin_lim(mags: np.ndarray, phase: np.ndarray, rc, n_iter: int, momentum: float = 0.99) -> np.ndarray:
    """Fast Griffin-Lim on the analysis STFT from ``phase``: mags, phase (F, T) -> wave."""
    window = analysis_window(rc)[None]
    length = signal_length(mags.shape[1], rc)
    alpha = momentum / (1 + momentum)
    spec = mags * np.exp(1j * phase)
    previous = np.zeros_like(spec)
    for _ in range(n_iter):
        rebuilt = stfts(istfts(spec[None], window, rc, length), window, rc)[0]
        angles = rebuilt - alpha * previous
        previous = rebuilt
        spec = mags * angles / (np.abs(angles) + 1e-16)
    return istfts(spec[None], window, rc, length)


class Targets:
    """What the reassigned spectrogram asks of the unit-energy STFTs, per bin (F, T) each:
    ``mags`` |S_h|, ``g_d`` = |S_h| Im(S_dh / S_h), ``g_t`` = |S_h| Re(S_th / S_h), and
    ``use_d`` / ``use_t`` (1.0 or 0.0) whether the reassignment defines them."""

    def __init__(self, r: Reassigned, rc):
        norms = np.linalg.norm(reassignment_windows(rc), axis=1)
        no_freq, no_time = undefined_bins(r, rc)
        k = np.arange(r.mags.shape[0])[:, None]
        im_dh = 2 * np.pi * (k / rc.n_fft - np.nan_to_num(r.freqs) / rc.sample_rate)
        frame_time = frame_starts(r.mags.shape[1], rc) + rc.n_fft // 2
        re_th = np.nan_to_num(r.times) * rc.sample_rate - frame_time[None, :]
        self.mags = r.mags / norms[0]
        self.g_d = np.where(no_freq, 0.0, im_dh) * norms[0] / norms[1] * self.mags
        self.g_t = np.where(no_time, 0.0, re_th) * norms[0] / norms[2] * self.mags
        self.use_d, self.use_t = (~no_freq).astype(float), (~no_time).astype(float)

    def best_phase(self, zh, zd, zt, grid: int = 24, newton: int = 3) -> np.ndarray:
        """argmin over theta of |M e^{i theta} - zh|^2 + use_d (Im(zd e^{-i theta}) - g_d)^2
        + use_t (Re(zt e^{-i theta}) - g_t)^2, per bin. The cost is a trigonometric polynomial
        of degree 2 in theta, a1 cos + b1 sin + a2 cos 2 + b2 sin 2 (plus a constant): its
        minimum is found on a grid, then polished by Newton steps."""
        p, q = zd.imag * self.use_d, -zd.real * self.use_d
        pp, qq = zt.real * self.use_t, zt.imag * self.use_t
        a1 = -2 * (self.mags * zh.real + self.g_d * p + self.g_t * pp)
        b1 = -2 * (self.mags * zh.imag + self.g_d * q + self.g_t * qq)
        a2 = 0.5 * (p ** 2 - q ** 2 + pp ** 2 - qq ** 2)
        b2 = p * q + pp * qq
        angles = np.linspace(0, 2 * np.pi, grid, endpoint=False)
        basis = np.stack([np.cos(angles), np.sin(angles), np.cos(2 * angles), np.sin(2 * angles)])
        theta = angles[np.argmin(np.stack([a1, b1, a2, b2], axis=-1) @ basis, axis=-1)]
        for _ in range(newton):
            c1, s1, c2, s2 = np.cos(theta), np.sin(theta), np.cos(2 * theta), np.sin(2 * theta)
            slope = -a1 * s1 + b1 * c1 - 2 * a2 * s2 + 2 * b2 * c2
            curve = -a1 * c1 - b1 * s1 - 4 * a2 * c2 - 4 * b2 * s2
            step = np.where(curve > 0, slope / np.where(curve > 0, curve, 1.0), 0.0)
            theta = theta - np.clip(step, -0.3, 0.3)
        return theta

    def project(self, zh, zd, zt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The nearest triple that meets the targets: (S_h, S_dh, S_th), each (F, T)."""
        unit = np.exp(1j * self.best_phase(zh, zd, zt))
        sd = np.where(self.use_d > 0, unit * ((zd * unit.conj()).real + 1j * self.g_d), zd)
        st = np.where(self.use_t > 0, unit * (self.g_t + 1j * (zt * unit.conj()).imag), zt)
        return self.mags * unit, sd, st

    def cost(self, zh, zd, zt) -> np.ndarray:
        """Squared distance (T,) of each frame's triple to the nearest one that meets the targets."""
        sh, sd, st = self.project(zh, zd, zt)
        return (np.abs(sh - zh) ** 2 + np.abs(sd - zd) ** 2 + np.abs(st - zt) ** 2).sum(axis=0)


def reassigned_griffin_lim(r: Reassigned, rc, n_iter: int, momentum: float = 0.9,
                           phase: np.ndarray | None = None, wave: np.ndarray | None = None) -> np.ndarray:
    """Alternating projections onto the signals whose three STFTs match the reassigned
    spectrogram (module docstring), from the h-STFT ``phase`` (F, T) or from ``wave``;
    returns the wave. ``momentum`` extrapolates each new signal along its last change, as
    fast Griffin-Lim does on the STFT, which speeds convergence."""
    windows = unit_windows(rc)
    targets = Targets(r, rc)
    length = signal_length(r.mags.shape[1], rc)
    if wave is None:
        wave = istfts((targets.mags * np.exp(1j * phase))[None], windows[:1], rc, length)
    previous = wave
    for _ in range(n_iter):
        projected = istfts(np.stack(targets.project(*stfts(wave, windows, rc))), windows, rc, length)
        wave = projected + momentum * (projected - previous)
        previous = projected
    return previous


def _flip_costs(wave: np.ndarray, targets: Targets, windows: np.ndarray, rc) -> tuple[np.ndarray, np.ndarray]:
    """Cost of every frame as it is (T,), and (J, T) with its samples from j hops on negated,
    j = 1 .. J: a sign flip at a hop boundary inside the frame."""
    n, hop = rc.n_fft, rc.hop_length
    x = np.pad(wave, n // 2) if rc.center else wave
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop][:targets.mags.shape[1]]
    def cost(f):
        return targets.cost(*np.fft.rfft(f[None] * windows[:, None, :], axis=-1).transpose(0, 2, 1))
    flipped = []
    for j in range(1, -(-n // hop)):
        sign = np.where(np.arange(n) < j * hop, 1.0, -1.0)
        flipped.append(cost(frames * sign))
    return cost(frames), np.array(flipped).reshape(-1, frames.shape[0])


def fix_sign_flips(wave: np.ndarray, r: Reassigned, rc, rounds: int = 20) -> tuple[np.ndarray, int]:
    """Negate the wave from hop boundaries on wherever that brings the frames across the boundary
    closer to the reassigned spectrogram; returns the wave and the number of flips.

    The reassignment and the magnitude are the same for x and -x, so iterations can converge to
    +x in one stretch and -x in the next, joined by a short stretch that fits neither; the
    frames straddling a boundary inside that stretch then fit better with the rest negated.
    Each round flips at every boundary whose gain is the best within n_fft on either side,
    then re-scores, until no flip gains.
    """
    windows = unit_windows(rc)
    targets = Targets(r, rc)
    hop, frames = rc.hop_length, r.mags.shape[1]
    offset = rc.n_fft // 2 if rc.center else 0         # signal sample of frame 0's first sample
    flips = 0
    for _ in range(rounds):
        base, flipped = _flip_costs(wave, targets, windows, rc)
        gain = np.zeros(frames + flipped.shape[0])     # gain[b]: flip from frame b's first sample on
        for j in range(flipped.shape[0]):              # frame m has the boundary m + j + 1 inside
            gain[j + 1:j + 1 + frames] += base - flipped[j]
        reach = -(-rc.n_fft // hop)
        padded = np.pad(gain, reach, constant_values=-np.inf)
        best = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).max(axis=1)
        chosen = np.flatnonzero((gain >= best) & (gain > 1e-9 * max(base.sum(), 1e-30)))
        if len(chosen) == 0:
            break
        for b in chosen:
            wave = wave.copy() if flips == 0 else wave
            wave[max(0, b * hop - offset):] *= -1
            flips += 1
    return wave, flips
