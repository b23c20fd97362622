"""Finding gaps in a waveform, mapping them to Mel frames, and splicing fills back.

A gap is a half-open sample range ``(start, end)``.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from processors.core.errors import UserError


def find_silent_gaps(samples: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Runs of exact digital silence of at least ``min_len`` samples.

    samples: (N,) or (N, C); a sample is silent when every channel is exactly 0.
    """
    silent = np.all(samples == 0, axis=1) if samples.ndim == 2 else samples == 0
    return [(s, e) for s, e in gap_runs(silent) if e - s >= min_len]


def gap_runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a (T,) bool array -> half-open (start, end) ranges."""
    edges = np.diff(np.concatenate([[0], columns.astype(np.int8), [0]]))
    return [(int(s), int(e)) for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def extend_over_near_silence(samples: np.ndarray, gaps: list[tuple[int, int]], sample_rate: int,
                             rel_db: float = -30.0, max_ms: float = 60.0, local_db: float = -20.0,
                             window_ms: float = 1.0) -> list[tuple[int, int]]:
    """Widen each gap over the near-silent samples around it, at most ``max_ms`` each side.

    A gap cut in a wav and saved as MP3 or OGG comes back with the codec's low-level smear
    around its exactly-zero core (30-60 ms in all); left unfilled, that smear is heard as a
    dropout at the fill's edges. "Near-silent" is relative: a 1 ms RMS envelope below
    ``rel_db`` dB under the file's RMS, or below ``local_db`` dB under the mean level of the
    ``max_ms`` beside the gap on that side. The codec's echo of a loud sound next to the gap
    (Vorbis's pre-echo before the sound after it) is often above the file's threshold but far
    under that sound (lab notebook, "Gaps in lossy files"). samples: (N,) or (N, C); gaps:
    sorted half-open sample ranges. Returns the widened ranges, never overlapping a neighbour.
    """
    if not gaps or max_ms <= 0:
        return list(gaps)
    power = (samples.astype(np.float64) ** 2).mean(axis=1) if samples.ndim == 2 else samples.astype(np.float64) ** 2
    level = np.sqrt(power.mean())
    if level == 0:
        return list(gaps)
    thr = (level * 10 ** (rel_db / 20)) ** 2

    def threshold(a: int, b: int) -> float:
        """Power under which a sample of [a, b) (beside a gap) is near-silent."""
        return max(thr, float(power[a:b].mean()) * 10 ** (local_db / 10)) if b > a else thr

    w, reach = max(1, int(window_ms * sample_rate / 1000)), int(max_ms * sample_rate / 1000)
    out, n = [], len(power)

    def loud(a: int, b: int) -> np.ndarray:
        """Indices in [a, b) whose centred w-sample mean power reaches [a, b)'s threshold."""
        lo, hi = max(0, a - w), min(n, b + w)
        c = np.concatenate([[0.0], np.cumsum(power[lo:hi])])
        i = np.arange(a, b)
        left, right = np.clip(i - w // 2, lo, hi), np.clip(i + (w + 1) // 2, lo, hi)
        mean = (c[right - lo] - c[left - lo]) / np.maximum(right - left, 1)
        return i[mean >= threshold(a, b)]

    for k, (s, e) in enumerate(gaps):
        floor = max(out[-1][1] if out else 0, s - reach)
        ceil = min(gaps[k + 1][0] if k + 1 < len(gaps) else n, e + reach)
        before, after = loud(floor, s), loud(e, ceil)
        new_s = int(before[-1]) + 1 if len(before) else floor
        new_e = int(after[0]) if len(after) else ceil
        out.append((new_s, new_e))
    return out


def sample_gaps(n_samples: int, gap_len: int, window: int, count: int, seed: int, key: str,
                disjoint: bool = False) -> list[tuple[int, int]]:
    """``count`` gaps of ``gap_len`` samples in a clip of ``n_samples``, seeded by (seed, key, gap_len),
    each with the crop window of ``window`` samples centred on it inside the clip (full context
    on both sides).

    By default the gaps are independent (each is scored on its own, so they may overlap): centres
    uniform in [window/2, n_samples - window/2]; [] when the clip is shorter than the window.
    ``disjoint``: gaps filled together in one clip; one at a seeded position in each of ``count``
    equal parts of that range; [] when a part cannot hold a gap.
    """
    rng = np.random.default_rng([seed, zlib.crc32(key.encode()), gap_len])
    lo = window // 2
    if disjoint:
        part = (n_samples - window // 2 - lo) // count
        if part <= gap_len:
            return []
        return [(s, s + gap_len) for s in (lo + i * part + int(rng.integers(0, part - gap_len)) for i in range(count))]
    hi = n_samples - (window - window // 2)
    if hi < lo or gap_len >= window:
        return []
    centres = rng.integers(lo, hi + 1, size=count)
    return [(int(c) - gap_len // 2, int(c) - gap_len // 2 + gap_len) for c in centres]


def parse_gaps(text: str, sample_rate: int, n_samples: int) -> list[tuple[int, int]]:
    """'1.20:1.45,3.00:3.20' (seconds) -> sorted sample ranges, checked against the file."""
    gaps = []
    for part in text.split(","):
        try:
            a, b = (float(x) for x in part.split(":"))
        except ValueError:
            raise UserError(f"--gaps: cannot read {part!r}; expected start:end in seconds, e.g. 1.20:1.45") from None
        if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
            raise UserError(f"--gaps: {part!r} needs 0 <= start < end, both finite")
        s, e = int(round(a * sample_rate)), int(round(b * sample_rate))
        if e == s:
            raise UserError(f"--gaps: {part!r} is shorter than one sample at {sample_rate} Hz")
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
