"""A speech-like corpus the demo can make offline, with no download.

Each clip is a sequence of "syllables": voiced stretches (a glottal-like harmonic
source with a gliding, vibrating pitch, shaped by three moving formant
resonances), unvoiced noise bursts (fricatives), and short pauses. It is not
speech, but it has what a Mel inpainter must learn from speech: harmonic stacks
that glide, formant envelopes, onsets and noise, so gaps cannot be filled by
copying a neighbouring frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from processors.audio_io import write_audio

VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                   [530, 1840, 2480], [570, 840, 2410], [660, 1720, 2410]], dtype=np.float64)


def _formant_gain(freqs: np.ndarray, formants: np.ndarray, bandwidth: float = 90.0) -> np.ndarray:
    """Resonance gain at ``freqs`` (n,) Hz for per-sample formants (n, 3) Hz -> (n,)."""
    gain = np.zeros_like(freqs)
    for i in range(formants.shape[1]):
        gain += (0.9 ** i) / (1.0 + ((freqs - formants[:, i]) / (bandwidth * (1 + i))) ** 2)
    return gain


def _voiced(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = rng.uniform(95, 210) * np.exp(np.linspace(0, rng.uniform(-0.35, 0.35), n))
    f0 *= 1 + 0.015 * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    v0, v1 = VOWELS[rng.integers(len(VOWELS), size=2)] * rng.uniform(0.9, 1.15)
    blend = np.linspace(0, 1, n)[:, None]
    formants = (1 - blend) * v0 + blend * v1               # (n, 3), moving formants
    out = np.zeros(n)
    for k in range(1, int(0.45 * sr / f0.max())):
        out += _formant_gain(k * f0, formants) * np.sin(k * phase) / k ** 0.6
    env = np.sin(np.linspace(0, np.pi, n)) ** 0.5
    return out * env


def _unvoiced(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    noise = rng.standard_normal(n)
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    centre = rng.uniform(2500, 6000)
    spectrum *= np.exp(-0.5 * ((freqs - centre) / rng.uniform(600, 1800)) ** 2)
    return np.fft.irfft(spectrum, n) * np.hanning(n) * 0.8


def synth_clip(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """One speech-like clip, float32 (round(seconds * sr),), peak about 0.5."""
    total = int(seconds * sr)
    parts, length = [], 0
    while length < total:
        kind = rng.choice(["voiced", "voiced", "voiced", "unvoiced", "pause"])
        n = int(sr * (rng.uniform(0.12, 0.35) if kind == "voiced" else rng.uniform(0.04, 0.12)))
        part = {"voiced": _voiced, "unvoiced": _unvoiced}.get(kind, lambda r, n, s: np.zeros(n))(rng, n, sr)
        parts.append(part * rng.uniform(0.5, 1.0) if kind != "pause" else part)
        length += n
    wave = np.concatenate(parts)[:total]
    wave += 1e-3 * rng.standard_normal(total)               # room noise: no digital silence
    return (0.5 * wave / np.max(np.abs(wave))).astype(np.float32)


def make_corpus(folder: str | Path, n_clips: int, seconds: float, sr: int, seed: int = 0) -> list[Path]:
    """Write ``n_clips`` clips as ``folder/clip_XXX.wav`` (16-bit); existing ones are kept."""
    folder = Path(folder)
    paths = []
    for i in range(n_clips):
        path = folder / f"clip_{i:03d}.wav"
        if not path.exists():
            rng = np.random.default_rng([seed, i])
            write_audio(path, synth_clip(rng, seconds * rng.uniform(0.8, 1.2), sr), sr, subtype="PCM_16")
        paths.append(path)
    return paths
