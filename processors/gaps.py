"""Finding gaps in a waveform, mapping them to Mel frames, and splicing fills back.

A gap is a half-open sample range ``(start, end)``.
"""
from __future__ import annotations

import numpy as np

from processors.errors import UserError


def find_silent_gaps(samples: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Runs of exact digital silence of at least ``min_len`` samples.

    samples: (N,) or (N, C); a sample is silent when every channel is exactly 0.
    """
    silent = np.all(samples == 0, axis=1) if samples.ndim == 2 else samples == 0
    edges = np.diff(np.concatenate([[0], silent.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_len]


def parse_gaps(text: str, sample_rate: int, n_samples: int) -> list[tuple[int, int]]:
    """'1.20:1.45,3.00:3.20' (seconds) -> sorted sample ranges, checked against the file."""
    gaps = []
    for part in text.split(","):
        try:
            a, b = (float(x) for x in part.split(":"))
        except ValueError:
            raise UserError(f"--gaps: cannot read {part!r}; expected start:end in seconds, e.g. 1.20:1.45") from None
        if not 0 <= a < b:
            raise UserError(f"--gaps: {part!r} needs 0 <= start < end")
        s, e = int(round(a * sample_rate)), int(round(b * sample_rate))
        if e > n_samples:
            raise UserError(f"--gaps: {part!r} ends after the file ({n_samples / sample_rate:.2f} s)")
        gaps.append((s, e))
    gaps.sort()
    for (s0, e0), (s1, _) in zip(gaps, gaps[1:]):
        if s1 < e0:
            raise UserError(f"--gaps: ranges overlap near {s1 / sample_rate:.2f} s")
    return gaps


def gap_frames(start: int, end: int, hop: int, n_fft: int, n_frames: int) -> tuple[int, int]:
    """Mel frames (half-open) whose analysis window overlaps samples [start, end).

    Frames are centred (torchaudio ``center=True``): frame t covers
    ``[t*hop - n_fft/2, t*hop + n_fft/2)``.
    """
    half = n_fft // 2
    first = max(0, int(np.floor((start - half) / hop)) + 1)
    last = min(n_frames, int(np.ceil((end + half) / hop)))
    return first, max(first + 1, last)


def splice(original: np.ndarray, fill: np.ndarray, start: int, end: int, fade: int) -> np.ndarray:
    """Copy of ``original`` with ``fill`` written into [start, end) only.

    original: (N,) or (N, C); fill: (end - start,) mono, broadcast to every channel.
    Inside the gap the fill fades in and out over ``fade`` samples (raised cosine),
    so the seam has no click; samples outside the gap are untouched, bit for bit.
    """
    out = original.copy()
    n = end - start
    piece = fill[:n].astype(np.float64)
    fade = min(fade, n // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade + 2)[1:-1])
        piece[:fade] *= ramp
        piece[n - fade:] *= ramp[::-1]
    piece = np.clip(piece, -1.0, 1.0).astype(out.dtype)
    out[start:end] = piece[:, None] if out.ndim == 2 else piece
    return out
