"""What the learned inverse (models.reassigned_net) sees of a classical reconstruction.

The net corrects the phase that the last projection of reassigned Griffin-Lim
(processors.reassigned_gl) would give each bin. Its inputs say how well the current signal
fits the reassigned spectrogram around each bin, and none of them changes when the whole
signal is negated or its phase turned by a constant (which the data cannot fix), so the
net cannot learn an absolute phase it could not know on unseen files.
"""
from __future__ import annotations

import numpy as np

from processors.reassigned import Reassigned, stfts
from processors.reassigned_gl import Targets, unit_windows

N_FEATURES = 11
FLOOR_DB = 100.0          # log magnitudes are floored this far below the file's peak


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def correction_inputs(wave: np.ndarray, r: Reassigned, rc, dphi_dm: np.ndarray, dphi_dk: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """Everything the net and its synthesis step need for the signal ``wave`` (spanning r's frames).

    dphi_dm, dphi_dk: the phase derivatives PGHI integrated (F, T each, radians per frame and
    per bin). Returns float32 / complex64 arrays: ``features`` (N_FEATURES, F, T); ``theta``
    (F, T), the projection's phase; the triple ``zd``, ``zt`` (F, T) of the unit-energy STFTs
    and the targets ``mags``, ``g_d``, ``g_t``, ``use_d``, ``use_t`` (F, T)
    (processors.reassigned_gl.Targets).
    """
    targets = Targets(r, rc)
    zh, zd, zt = stfts(wave, unit_windows(rc), rc)
    theta = targets.best_phase(zh, zd, zt)
    mags = targets.mags
    peak = max(float(mags.max()), 1e-30)
    log_mag = np.log10(np.maximum(mags, peak * 10 ** (-FLOOR_DB / 20)) / peak) * 20 / FLOOR_DB    # -1 .. 0
    mismatch = np.clip(np.log(np.maximum(np.abs(zh), 1e-12) / np.maximum(mags, 1e-12)), -3, 3)
    moved = _wrap(theta - np.angle(zh))                        # what the projection turned
    along_time = np.zeros_like(theta)                          # wrapped misfit of theta's slope with the
    along_time[:, 1:] = _wrap(np.diff(theta, axis=1) - 0.5 * (dphi_dm[:, 1:] + dphi_dm[:, :-1]))
    along_freq = np.zeros_like(theta)                          # derivatives PGHI integrated
    along_freq[1:] = _wrap(np.diff(theta, axis=0) - 0.5 * (dphi_dk[1:] + dphi_dk[:-1]))
    features = np.stack([log_mag, mismatch, np.cos(moved), np.sin(moved), np.cos(along_time), np.sin(along_time),
                         np.cos(along_freq), np.sin(along_freq), targets.use_d, targets.use_t,
                         np.full_like(log_mag, 1.0)])
    out = {"features": features.astype(np.float32), "theta": theta.astype(np.float32),
           "zd": zd.astype(np.complex64), "zt": zt.astype(np.complex64)}
    for name in ("mags", "g_d", "g_t", "use_d", "use_t"):
        out[name] = getattr(targets, name).astype(np.float32)
    return out
