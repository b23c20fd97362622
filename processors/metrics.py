"""Objective scores of a filled recording against its original.

Gap metrics (LSD, Mel MSE, Mel SNR) look only at the frames whose centre lies
inside the gap; whole-signal metrics (PESQ, STOI, PLCMOS, ViSQOL, ...) score the
**excerpt** around the gap (:func:`excerpt_bounds`): a fixed number of seconds each
side of it, cut at the file's ends. They need far more signal than one gap holds, and
scored on whole files they would depend on the file's length (and PESQ's C code
crashes on files of minutes).

Log-spectral distance (LSD)
---------------------------
LSD measures how far the short-time power spectrum of the filled signal is
from the original's, in dB, on the STFT frames that cover the gap::

    LSD = (1/T) * sum_t sqrt( (1/K) * sum_k (10 log10 P_ref(t, k) - 10 log10 P_est(t, k))^2 )

- ``P(t, k) = |STFT(t, k)|^2`` with the model's ``n_fft``, ``win_length`` and
  ``hop_length`` (Hann window, centred frames: frame ``t`` is centred on sample
  ``t * hop``); the frames ``t`` are those whose centre lies inside the gap;
- the bins ``k`` run from 0 Hz up to the Mel band's upper limit ``audio.f_max``,
  so content the Mel features never see is not scored;
- both power spectra are floored ``LSD_FLOOR_DB`` (80) dB below the reference's
  peak (its loudest bin in the stretch given: in evaluation the gap and 2 s each side,
  ``training.evaluation.scoring.GAP_METRIC_SECONDS``), so silence in either signal
  is not an infinitely large error;
- lower is better; 0 dB means identical spectra.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from processors.audio_io import resample

EVAL_RATE = 16000   # PESQ wide-band and our STOI both run at 16 kHz
LSD_FLOOR_DB = 80.0  # spectra are compared down to this far below the reference's peak


def excerpt_bounds(gap: tuple[int, int], n_samples: int, sr: int, seconds: float) -> tuple[int, int]:
    """Half-open sample range [lo, hi) of the excerpt around ``gap = (start, end)``:
    ``round(seconds * sr)`` samples each side of the gap, cut at the file's ends (0, n_samples)."""
    side = round(seconds * sr)
    return max(0, gap[0] - side), min(n_samples, gap[1] + side)


def centre_frames(start: int, end: int, hop: int, n_frames: int) -> tuple[int, int]:
    """Half-open range of centred frames (frame t centred on sample ``t * hop``) whose
    centre lies in samples [start, end); at least one frame, clamped to ``n_frames``."""
    first = min(n_frames - 1, math.ceil(start / hop))
    last = min(n_frames, math.ceil(end / hop))
    return first, max(first + 1, last)


def power_spectrogram(wave: np.ndarray, n_fft: int, win_length: int, hop: int) -> np.ndarray:
    """wave (N,) -> power |STFT|^2 (n_fft/2+1, N // hop + 1), Hann window, centred frames."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win_length, window=torch.hann_window(win_length),
                      center=True, pad_mode="reflect", return_complex=True)
    return (spec.abs() ** 2).double().numpy()


def spectral_distance_db(p_ref: np.ndarray, p_est: np.ndarray, peak: float,
                         floor_db: float = LSD_FLOOR_DB) -> float:
    """LSD in dB of two power spectrograms (K bins, T frames) already cut to the scored
    bins and frames, both floored ``floor_db`` below the reference power ``peak``:
    the mean over frames of the RMS over bins of the dB difference."""
    floor = max(float(peak), 1e-20) * 10.0 ** (-floor_db / 10.0)
    diff = 10.0 * np.log10(np.maximum(p_ref, floor)) - 10.0 * np.log10(np.maximum(p_est, floor))
    return float(np.mean(np.sqrt(np.mean(diff ** 2, axis=0))))


def bins_up_to(f_max: float, n_fft: int, sr: int) -> int:
    """How many STFT bins lie at or below ``f_max`` Hz (bin k is at k * sr / n_fft Hz)."""
    return int(np.floor(f_max * n_fft / sr)) + 1


def log_spectral_distance(ref: np.ndarray, est: np.ndarray, span: tuple[int, int], sr: int, n_fft: int,
                          win_length: int, hop: int, f_max: float, floor_db: float = LSD_FLOOR_DB) -> float:
    """LSD in dB between ``ref`` and ``est`` (both (N,) at ``sr``) on the frames covering
    samples ``span = (start, end)``, bins up to ``f_max`` Hz; see the module docstring."""
    if ref.shape != est.shape:
        raise ValueError(f"ref and est differ in length: {ref.shape} vs {est.shape}")
    bins = bins_up_to(f_max, n_fft, sr)
    p_ref = power_spectrogram(ref, n_fft, win_length, hop)[:bins]
    p_est = power_spectrogram(est, n_fft, win_length, hop)[:bins]
    t0, t1 = centre_frames(span[0], span[1], hop, p_ref.shape[1])
    return spectral_distance_db(p_ref[:, t0:t1], p_est[:, t0:t1], p_ref.max(), floor_db)


def mel_mse(ref_mel: np.ndarray, est_mel: np.ndarray) -> float:
    """Mean squared error of two normalised log-Mels of equal shape (n_mels, T), in
    normalised units squared (1.0 = the full min_db..max_db range)."""
    return float(np.mean((ref_mel.astype(np.float64) - est_mel) ** 2))


def mel_snr_db(ref_mel: np.ndarray, est_mel: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - est)^2) over normalised log-Mels (n_mels, T), in dB;
    ``inf`` when they are identical, NaN when the reference is all at the floor (a gap in
    digital silence: 0 / 0, and any fill would score -300 dB). Higher is better."""
    if not np.any(ref_mel):
        return math.nan
    return snr_db(ref_mel, est_mel)


def pesq_wb(ref: np.ndarray, est: np.ndarray, sr: int) -> tuple[float, str]:
    """PESQ wide-band (ITU-T P.862.2, MOS-LQO about 1.0-4.6) of a whole signal at 16 kHz.

    ref, est: (N,) at ``sr``. Returns ``(score, "")``, or ``(nan, reason)`` when PESQ
    cannot score the pair (silence, too short): a skipped clip, not a crash.
    """
    from pesq import PesqError, pesq
    r, e = resample(ref, sr, EVAL_RATE), resample(est, sr, EVAL_RATE)
    if not np.any(r):
        return math.nan, "pesq: reference is silent"
    try:
        return float(pesq(EVAL_RATE, r.astype(np.float64), e.astype(np.float64), "wb")), ""
    except (PesqError, ValueError) as exc:
        text = exc.args[0] if exc.args else type(exc).__name__
        text = text.decode() if isinstance(text, bytes) else str(text)
        return math.nan, f"pesq: {text}"


def stoi_scores(ref: np.ndarray, est: np.ndarray, sr: int) -> tuple[dict[str, float], str]:
    """STOI and extended STOI (both 0..1, higher is better) of a whole signal at 16 kHz.

    ref, est: (N,) at ``sr``. Returns ``({"stoi": s, "estoi": e}, "")``, or NaNs and a
    reason when the clip has too little speech (under ~0.4 s after pystoi drops silence).
    """
    from pystoi import stoi
    r, e = resample(ref, sr, EVAL_RATE).astype(np.float64), resample(est, sr, EVAL_RATE).astype(np.float64)
    out = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, extended in (("stoi", False), ("estoi", True)):
            out[name] = float(stoi(r, e, EVAL_RATE, extended=extended))
    # pystoi warns and returns 1e-5 instead of raising when it runs out of frames
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return {k: math.nan for k in out}, "stoi: too little non-silent speech (needs ~30 frames)"
    return out, ""


def _rotated(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """``est`` with its analytic signal turned by the one angle that brings it closest to ``ref``."""
    from scipy.signal import hilbert
    analytic = hilbert(np.asarray(est, dtype=np.float64))
    return np.real(analytic * np.exp(-1j * np.angle(np.sum(analytic * ref))))


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - est)^2) in dB, both of one shape; ``inf`` when identical."""
    noise = float(np.sum((np.asarray(ref, np.float64) - est) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(max(float(np.sum(np.square(ref, dtype=np.float64))), 1e-30) / noise)


def rotated_snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """SNR (dB) after turning ``est``'s analytic signal by the best single angle (a sign flip is the
    angle pi): a phase rebuilt from its derivatives is right only up to such a constant."""
    return snr_db(ref, _rotated(ref, est))


def segmental_snr_db(ref: np.ndarray, est: np.ndarray, segment: int, floor_db: float = 40.0) -> float:
    """Mean SNR (dB) over segments of ``segment`` samples, each turned by its own best angle, over the
    segments whose energy is within ``floor_db`` of the loudest one's; each capped to [-10, 60] dB.
    It says how good the rebuilt waveform is locally, whatever the sign of each stretch."""
    n = (len(ref) // segment) * segment
    if n == 0:
        return math.nan
    r, e = np.reshape(ref[:n], (-1, segment)), np.reshape(est[:n], (-1, segment))
    energy = np.sum(r.astype(np.float64) ** 2, axis=1)
    keep = energy > energy.max() * 10 ** (-floor_db / 10)
    return float(np.mean([min(60.0, max(-10.0, rotated_snr_db(a, b))) for a, b in zip(r[keep], e[keep])]))


def spectral_convergence(ref_mags: np.ndarray, est_mags: np.ndarray) -> float:
    """|| |S_est| - |S_ref| ||_F / || |S_ref| ||_F of two magnitude spectrograms of equal shape."""
    return float(np.linalg.norm(est_mags - ref_mags) / max(float(np.linalg.norm(ref_mags)), 1e-30))
