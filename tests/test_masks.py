"""Gap masks (1 = missing, whole Mel columns) and the masked-crop dataset built on them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets.masks import centred_gap, gaps_to_mask, sample_mask, sample_random_gaps
from datasets.mel_dataset import MaskedMelCrops
from training.distributed import StepSampler, World
from processors.core.config import MaskConfig
from training.loop import VAL_SEED_SALT

# (n_frames, max_gaps, min_fraction, max_fraction, margin); the last case sits exactly at
# the limit config validation allows (max_fraction * n + max_gaps == n - 2 * margin).
RANDOM_CASES = [(128, 2, 0.10, 0.20, 4), (32, 3, 0.05, 0.30, 2), (64, 1, 0.25, 0.25, 8), (32, 2, 0.6875, 0.6875, 4)]


@pytest.mark.parametrize("n, max_gaps, lo, hi, margin", RANDOM_CASES)
def test_random_gaps_respect_every_constraint(n, max_gaps, lo, hi, margin):
    counts = set()
    for seed in range(300):
        gaps = sample_random_gaps(np.random.default_rng(seed), n, max_gaps, lo, hi, margin)
        counts.add(len(gaps))
        assert 1 <= len(gaps) <= max_gaps
        assert gaps == sorted(gaps)
        for s, e in gaps:
            assert margin <= s < e <= n - margin, gaps
        for (_, e0), (s1, _) in zip(gaps, gaps[1:]):
            assert s1 > e0, f"gaps overlap or touch: {gaps}"
        total = sum(e - s for s, e in gaps)
        assert max(round(lo * n), len(gaps)) - 1 <= total <= round(hi * n) + 1, (gaps, total)
    assert counts == set(range(1, max_gaps + 1)), "every gap count should occur"


def test_random_gaps_are_deterministic_per_seed():
    draw = lambda seed: sample_random_gaps(np.random.default_rng(seed), 128, 2, 0.1, 0.2, 4)  # noqa: E731
    assert draw(7) == draw(7)
    assert len({tuple(draw(s)) for s in range(20)}) > 10


@pytest.mark.parametrize("n, g", [(32, 8), (33, 8), (384, 130), (20, 1)])
def test_fixed_gap_is_centred(n, g):
    [(s, e)] = centred_gap(n, g)
    assert e - s == g
    assert abs(s - (n - e)) <= 1


def test_mask_is_whole_columns_one_where_missing():
    gaps = [(3, 5), (10, 14)]
    mask = gaps_to_mask(gaps, n_mels=6, n_frames=20)
    assert mask.shape == (1, 6, 20) and mask.dtype == np.float32
    missing = np.zeros(20, dtype=bool)
    missing[3:5] = missing[10:14] = True
    assert (mask == missing.astype(np.float32)[None, None, :]).all()
    assert set(np.unique(mask)) <= {0.0, 1.0}


@pytest.mark.parametrize("mode", ["random", "fixed"])
def test_sample_mask_modes(mode):
    cfg = MaskConfig(mode=mode, gap_frames=8)
    mask = sample_mask(np.random.default_rng(0), cfg, n_mels=5, n_frames=48)
    assert mask.shape == (1, 5, 48)
    columns = mask[0]
    assert ((columns == columns[:1]).all()), "every Mel band shares the time mask"
    assert columns[0, :cfg.margin_frames].sum() == 0 and columns[0, -cfg.margin_frames:].sum() == 0
    if mode == "fixed":
        assert columns[0].sum() == 8 and (columns[0, 20:28] == 1).all()


# --------------------------------------------------------------------------- dataset

def fake_mels(n_mels: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(0.1, 1.0, (n_mels, frames)).astype(np.float32) for frames in (50, 80, 20)]


@pytest.mark.parametrize("mode", ["random", "fixed"])
def test_items_are_a_function_of_seed_and_index(mode):
    mask_cfg = MaskConfig(mode=mode, gap_frames=6, fill_value=0.25, margin_frames=2)
    a = MaskedMelCrops(fake_mels(), 32, mask_cfg, seed=5, length=40)
    b = MaskedMelCrops(fake_mels(), 32, mask_cfg, seed=5, length=40)
    other = MaskedMelCrops(fake_mels(), 32, mask_cfg, seed=6, length=40)
    for i in (0, 7, 39, 7):               # any order, any number of times
        for key in ("masked", "target", "mask"):
            assert torch.equal(a[i][key], b[i][key])
    assert not torch.equal(a[1]["target"], a[2]["target"])
    assert any(not torch.equal(a[i]["target"], other[i]["target"]) for i in range(5))


def test_item_contents_follow_the_mask_convention():
    fill = 0.25
    data = MaskedMelCrops(fake_mels(), 32, MaskConfig(fill_value=fill, margin_frames=2), seed=0, length=30)
    assert len(data) == 30
    for i in range(len(data)):
        item = data[i]
        masked, target, mask = item["masked"], item["target"], item["mask"]
        for value in item.values():
            assert value.shape == (1, 6, 32) and value.dtype == torch.float32
        hole = mask == 1
        assert hole.any() and (~hole).any()
        assert ((mask == 0) | hole).all()
        assert (masked[hole] == fill).all()
        assert torch.equal(masked[~hole], target[~hole])


def test_short_file_is_padded_with_silence():
    mel = np.full((6, 20), 0.5, dtype=np.float32)
    item = MaskedMelCrops([mel], 32, MaskConfig(margin_frames=2), seed=0, length=1)[0]
    assert (item["target"][..., :20] == 0.5).all() and (item["target"][..., 20:] == 0).all()


def test_validation_masks_identical_across_instances():
    seed = 3 + VAL_SEED_SALT
    first = MaskedMelCrops(fake_mels(), 32, MaskConfig(margin_frames=2), seed, length=16)
    second = MaskedMelCrops(fake_mels(), 32, MaskConfig(margin_frames=2), seed, length=16)
    first_masks = torch.stack([first[i]["mask"] for i in range(16)])
    assert torch.equal(first_masks, torch.stack([second[i]["mask"] for i in range(16)]))
    train = MaskedMelCrops(fake_mels(), 32, MaskConfig(margin_frames=2), 3, length=16)
    assert not torch.equal(first_masks, torch.stack([train[i]["mask"] for i in range(16)]))


def test_step_sampler_resumes_mid_stream():
    assert list(StepSampler(3, 5, 2)) == [6, 7, 8, 9] and len(StepSampler(3, 5, 2)) == 4
    assert list(StepSampler(5, 5, 2)) == [] and len(StepSampler(6, 5, 2)) == 0


def test_step_sampler_ranks_split_each_global_batch():
    ranks = [list(StepSampler(1, 3, 4, World(r, 2))) for r in (0, 1)]
    assert ranks == [[4, 5, 8, 9], [6, 7, 10, 11]]
    assert sorted(ranks[0] + ranks[1]) == list(StepSampler(1, 3, 4))
