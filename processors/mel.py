"""Log-Mel features and Mel -> linear magnitude inversion (the vocoders: processors.vocoders).

Normalised log-Mel: ``(20 log10(max(mel, 10^(min_db/20))) - min_db) / (max_db - min_db)``,
so 0 is the floor (silence) and about 1 the loudest frames. Mel magnitudes are
amplitude (power 1), the convention the vocoders' Griffin-Lim is given.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T
from torch import nn

from processors.core.registry import Registry


def _norm(audio) -> str | None:
    return None if audio.mel_norm == "none" else audio.mel_norm


class MelSpectrogram(nn.Module):
    """waveform (..., N) -> normalised log-Mel (..., n_mels, frames), frames = N // hop + 1."""

    def __init__(self, audio):
        super().__init__()
        self.audio = audio
        self.mel = T.MelSpectrogram(
            sample_rate=audio.sample_rate, n_fft=audio.n_fft, win_length=audio.win_length,
            hop_length=audio.hop_length, f_min=audio.f_min, f_max=audio.f_max, n_mels=audio.n_mels,
            window_fn=torch.hann_window, power=1.0, center=True, pad_mode="reflect",
            norm=_norm(audio), mel_scale=audio.mel_scale)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return amplitude_to_normalised(self.mel(wave), self.audio.min_db, self.audio.max_db)


def log_mel(mel_fn, wave: np.ndarray) -> np.ndarray:
    """A waveform (N,), numpy, through ``mel_fn`` (a :class:`MelSpectrogram`) without autograd
    -> its normalised log-Mel (n_mels, frames), numpy."""
    with torch.no_grad():
        return mel_fn(torch.from_numpy(np.ascontiguousarray(wave))).numpy()


def amplitude_to_normalised(mel: torch.Tensor, min_db: float, max_db: float) -> torch.Tensor:
    """Mel amplitude (any shape) -> normalised log-Mel in [0, ~1]."""
    floor = 10.0 ** (min_db / 20.0)
    db = 20.0 * torch.log10(torch.clamp(mel, min=floor))
    return (db - min_db) / (max_db - min_db)


def normalised_to_amplitude(norm: torch.Tensor, min_db: float, max_db: float) -> torch.Tensor:
    """Inverse of :func:`amplitude_to_normalised` (values below 0 map to the floor)."""
    db = norm.clamp(min=0.0) * (max_db - min_db) + min_db
    return 10.0 ** (db / 20.0)


# --------------------------------------------------------------------------- Mel -> linear magnitude

# NNLS steps: on an LJSpeech clip 50 come within 0.13 dB (magnitude LSD) of 1000 steps, 100 within 0.02 dB
NNLS_ITERS = 100
MEL_INVERSES = Registry("Mel inverse")   # name -> fn(inverse: MelInverse, mel amplitude) -> linear magnitude
mel_inverse = MEL_INVERSES.register


@mel_inverse("lstsq")
def _lstsq(inv: "MelInverse", mel: torch.Tensor) -> torch.Tensor:
    """torchaudio ``InverseMelScale``: per-call least squares (minimum-norm, gelsd)."""
    return inv.lstsq(mel)


@mel_inverse("pinv")
def _pinv(inv: "MelInverse", mel: torch.Tensor) -> torch.Tensor:
    """The filterbank's pseudo-inverse, computed once: the same minimum-norm solution as
    ``lstsq`` for a full-rank filterbank, as one matrix product."""
    return inv.pinv @ mel


@mel_inverse("nnls")
def _nnls(inv: "MelInverse", mel: torch.Tensor) -> torch.Tensor:
    """Non-negative least squares by accelerated projected gradient (FISTA), started, as
    librosa's ``mel_to_stft`` solver is, from the clipped pseudo-inverse.

    Why not librosa's solver itself: on amplitude Mels its L-BFGS-B stops at that start
    point (its objective is divided by the problem's size and its gradient tolerance is
    absolute), so it equals 'pinv'; run to convergence it takes seconds per gap.
    """
    basis = inv.fb.T                                       # (n_mels, n_stft)
    x = (inv.pinv @ mel).clamp(min=0.0)
    y, t = x, 1.0
    for _ in range(NNLS_ITERS):
        x_next = (y - basis.T @ (basis @ y - mel) * inv.nnls_step).clamp(min=0.0)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = x_next + (t - 1) / t_next * (x_next - x)
        x, t = x_next, t_next
    return x


class MelInverse(nn.Module):
    """Mel amplitude (..., n_mels, T) -> linear magnitude (..., n_fft/2+1, T), >= 0.

    ``method`` is one of :data:`MEL_INVERSES`: 'lstsq', 'pinv' or 'nnls'.
    """

    def __init__(self, audio, method: str = "lstsq"):
        super().__init__()
        MEL_INVERSES.lookup(method, "vocoder.mel_inverse")
        self.method = method
        n_stft = audio.n_fft // 2 + 1
        fb = AF.melscale_fbanks(n_stft, audio.f_min, audio.f_max, audio.n_mels, audio.sample_rate,
                                _norm(audio), audio.mel_scale)            # (n_stft, n_mels)
        self.register_buffer("fb", fb)
        self.register_buffer("pinv", torch.linalg.pinv(fb.T.double()).float())   # (n_stft, n_mels)
        # 1 / Lipschitz constant of the least-squares gradient: the largest safe NNLS step
        self.register_buffer("nnls_step", 1.0 / torch.linalg.matrix_norm(fb.double(), 2).float() ** 2)
        self.lstsq = T.InverseMelScale(
            n_stft=n_stft, n_mels=audio.n_mels, sample_rate=audio.sample_rate, f_min=audio.f_min,
            f_max=audio.f_max, norm=_norm(audio), mel_scale=audio.mel_scale, driver="gelsd")

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return MEL_INVERSES[self.method](self, mel).clamp(min=0.0)
