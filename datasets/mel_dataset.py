"""Masked-Mel crops: the items every inpainter trains and validates on.

Each item is a pure function of ``(seed, index)``: no hidden RNG state, so runs
are reproducible and a resumed run sees exactly the items it would have seen.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.masks import sample_mask
from datasets.mel_cache import MelCache, analyse_files
from datasets.sources import data_files, split_for
from processors.core.errors import UserError

log = logging.getLogger(__name__)


def compute_mels(files: list[Path], audio, min_seconds: float, max_bad_fraction: float,
                 desc: str = "mels", cache: MelCache | None = None, jobs: int = 1) -> list[np.ndarray]:
    """Decode every file and compute its normalised log-Mel (n_mels, frames), float32.

    With a ``cache`` (datasets.mel_cache), cached Mels are read memory-mapped and missing
    ones are computed and written, so a training run fills the cache too. With ``jobs`` > 1
    the files not in the cache are analysed in that many processes first.
    Unreadable, too short or silent files are skipped and counted; more than
    ``max_bad_fraction`` of them is a UserError (something is wrong with the folder).
    """
    if not files:
        raise UserError(f"{desc}: no files")
    hits = {p: cache.load(p) for p in files} if cache is not None else {}
    hits = {p: hit for p, hit in hits.items() if hit is not None}        # an unreadable entry is analysed again
    hits.update(analyse_files([p for p in files if p not in hits], audio, cache, jobs, desc))
    mels, bad = [], {}
    for path in files:
        hit = hits[path]
        if isinstance(hit, str):
            bad[path] = hit
            continue
        mel, stats = hit
        if stats["samples"] < min_seconds * audio.sample_rate:
            bad[path] = f"shorter than {min_seconds} s"
        elif stats["peak"] < 1e-4:
            bad[path] = "silent"
        else:
            mels.append(mel)
    if bad:
        first = next(iter(bad.items()))
        log.warning("%s: skipped %d of %d files (e.g. %s: %s)", desc, len(bad), len(files), first[0], first[1])
    if not mels or len(bad) > max_bad_fraction * len(files):
        first = next(iter(bad.items()))
        raise UserError(f"{desc}: {len(bad)} of {len(files)} files unusable (e.g. {first[1]}); "
                        f"limit is data.max_bad_fraction={max_bad_fraction}")
    return mels


class MaskedMelCrops(Dataset):
    """Random fixed-length crops of a list of log-Mels, each with a sampled gap mask.

    Item ``i`` -> dict of float32 tensors, each (1, n_mels, crop_frames):
    ``masked`` (target with the hole set to ``fill_value``), ``target``, ``mask`` (1 = missing).
    Files are drawn in proportion to their length; files shorter than the crop
    are padded with the silence floor (0).
    """

    def __init__(self, mels: list[np.ndarray], crop_frames: int, mask_cfg, seed: int, length: int):
        self.mels, self.crop, self.mask_cfg = mels, crop_frames, mask_cfg
        self.seed, self.length = seed, length
        sizes = np.array([m.shape[-1] for m in mels], dtype=np.float64)
        self.weights = sizes / sizes.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        mel = self.mels[int(rng.choice(len(self.mels), p=self.weights))]
        return crop_item(mel, self.crop, self.mask_cfg, rng)


def crop_item(mel: np.ndarray, crop_frames: int, mask_cfg, rng: np.random.Generator,
              guide_fn=None) -> dict[str, torch.Tensor]:
    """One training item from a log-Mel (n_mels, T), maybe memory-mapped: only the crop is read.

    Returns float32 tensors (1, n_mels, crop_frames): ``masked``, ``target``, ``mask``; with
    ``guide_fn(offset, columns) -> (2, n_mels, crop_frames)`` (crop frame f is frame f + offset
    of ``mel``; columns (crop_frames,) bool, the missing frames) also ``guide`` from it.
    """
    n_mels, frames = mel.shape
    start = 0
    if frames < crop_frames:
        crop = np.zeros((n_mels, crop_frames), dtype=np.float32)
        crop[:, :frames] = mel
    else:
        start = int(rng.integers(0, frames - crop_frames + 1))
        crop = mel[:, start:start + crop_frames]
    # always a copy: a crop of a memory-mapped Mel must not alias the read-only map
    target = torch.from_numpy(np.array(crop, dtype=np.float32, order="C"))[None]
    mask = torch.from_numpy(sample_mask(rng, mask_cfg, n_mels, crop_frames))
    masked = target * (1 - mask) + mask_cfg.fill_value * mask
    item = {"masked": masked, "target": target, "mask": mask}
    if guide_fn is not None:
        item["guide"] = torch.from_numpy(guide_fn(start, mask[0, 0].numpy() > 0.5))
    return item


def build_splits(cfg) -> dict[str, list[Path]]:
    d = cfg.data
    return split_for(cfg, data_files(d))
