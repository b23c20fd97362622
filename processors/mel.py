"""Log-Mel features and their inverse, all from torchaudio with explicit parameters.

Normalised log-Mel: ``(20 log10(max(mel, 10^(min_db/20))) - min_db) / (max_db - min_db)``,
so 0 is the floor (silence) and about 1 the loudest frames. Mel magnitudes are
amplitude (power 1), the convention Griffin-Lim is given below.
"""
from __future__ import annotations

import torch
import torchaudio.transforms as T
from torch import nn


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


def amplitude_to_normalised(mel: torch.Tensor, min_db: float, max_db: float) -> torch.Tensor:
    """Mel amplitude (any shape) -> normalised log-Mel in [0, ~1]."""
    floor = 10.0 ** (min_db / 20.0)
    db = 20.0 * torch.log10(torch.clamp(mel, min=floor))
    return (db - min_db) / (max_db - min_db)


def normalised_to_amplitude(norm: torch.Tensor, min_db: float, max_db: float) -> torch.Tensor:
    """Inverse of :func:`amplitude_to_normalised` (values below 0 map to the floor)."""
    db = norm.clamp(min=0.0) * (max_db - min_db) + min_db
    return 10.0 ** (db / 20.0)


class MelToWave(nn.Module):
    """normalised log-Mel (..., n_mels, frames) -> waveform (..., (frames - 1) * hop).

    Mel -> linear magnitude by least squares (torchaudio ``InverseMelScale``), then
    ``GriffinLim`` with momentum (fast Griffin-Lim) from a seeded random phase.
    """

    def __init__(self, audio, n_iter: int = 32, momentum: float = 0.99):
        super().__init__()
        self.audio = audio
        self.inverse_mel = T.InverseMelScale(
            n_stft=audio.n_fft // 2 + 1, n_mels=audio.n_mels, sample_rate=audio.sample_rate,
            f_min=audio.f_min, f_max=audio.f_max, norm=_norm(audio), mel_scale=audio.mel_scale,
            driver="gelsd")
        self.griffin_lim = T.GriffinLim(
            n_fft=audio.n_fft, n_iter=n_iter, win_length=audio.win_length,
            hop_length=audio.hop_length, window_fn=torch.hann_window, power=1.0,
            momentum=momentum, rand_init=True)

    def linear_magnitude(self, norm_mel: torch.Tensor) -> torch.Tensor:
        """(..., n_mels, frames) -> linear magnitude (..., n_fft/2+1, frames), >= 0."""
        mel = normalised_to_amplitude(norm_mel, self.audio.min_db, self.audio.max_db)
        return self.inverse_mel(mel).clamp(min=0.0)

    def forward(self, norm_mel: torch.Tensor, seed: int = 0) -> torch.Tensor:
        # GriffinLim draws its initial phase from the global RNG: fork it so
        # vocoding is repeatable and does not disturb training's random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.griffin_lim(self.linear_magnitude(norm_mel))
