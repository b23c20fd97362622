"""Gap masks over Mel frames. Convention: mask 1 = missing, 0 = known context."""
from __future__ import annotations

import numpy as np


def sample_random_gaps(rng: np.random.Generator, n_frames: int, max_gaps: int,
                       min_fraction: float, max_fraction: float, margin: int) -> list[tuple[int, int]]:
    """1..max_gaps non-overlapping gaps, together ``min..max_fraction`` of ``n_frames``.

    Gaps lie inside ``[margin, n_frames - margin)`` and are at least one frame apart.
    Returns sorted half-open frame ranges.
    """
    k = int(rng.integers(1, max_gaps + 1))
    total = int(round(rng.uniform(min_fraction, max_fraction) * n_frames))
    total = max(total, k)
    # split the total into k positive lengths
    cuts = np.sort(rng.choice(np.arange(1, total), size=k - 1, replace=False)) if k > 1 else np.array([], int)
    lengths = np.diff(np.concatenate([[0], cuts, [total]])).astype(int)
    slack = (n_frames - 2 * margin) - total - (k - 1)
    offsets = np.sort(rng.integers(0, slack + 1, size=k))
    gaps = []
    for i, (off, length) in enumerate(zip(offsets, lengths)):
        start = margin + int(off) + int(lengths[:i].sum()) + i
        gaps.append((start, start + int(length)))
    return gaps


def centred_gap(n_frames: int, gap_frames: int) -> list[tuple[int, int]]:
    """One gap of ``gap_frames`` in the middle, equal context before and after."""
    start = (n_frames - gap_frames) // 2
    return [(start, start + gap_frames)]


def random_span(rng: np.random.Generator, n_frames: int, min_len: int, max_len: int,
                margin: int) -> list[tuple[int, int]]:
    """One gap of ``min_len..max_len`` frames (uniform), anywhere inside ``[margin, n_frames - margin)``."""
    length = int(rng.integers(min_len, max_len + 1))
    start = int(rng.integers(margin, n_frames - margin - length + 1))
    return [(start, start + length)]


def gaps_to_mask(gaps: list[tuple[int, int]], n_mels: int, n_frames: int) -> np.ndarray:
    """Frame ranges -> mask (1, n_mels, n_frames) float32, whole columns set to 1."""
    mask = np.zeros((1, n_mels, n_frames), dtype=np.float32)
    for s, e in gaps:
        mask[..., s:e] = 1.0
    return mask


def sample_mask(rng: np.random.Generator, mask_cfg, n_mels: int, n_frames: int) -> np.ndarray:
    """The configured masking scheme (``random``, ``fixed`` or ``range``) -> (1, n_mels, n_frames)."""
    if mask_cfg.mode == "fixed":
        gaps = centred_gap(n_frames, mask_cfg.gap_frames)
    elif mask_cfg.mode == "range":
        gaps = random_span(rng, n_frames, mask_cfg.min_gap_frames, mask_cfg.max_gap_frames, mask_cfg.margin_frames)
    else:
        gaps = sample_random_gaps(rng, n_frames, mask_cfg.max_gaps, mask_cfg.min_fraction,
                                  mask_cfg.max_fraction, mask_cfg.margin_frames)
    return gaps_to_mask(gaps, n_mels, n_frames)
