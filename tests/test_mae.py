"""Masked autoencoder: patch grid, mask bookkeeping, context pass-through, fine-tuning."""
from __future__ import annotations

import pytest
import torch

from conftest import ROOT, make_tiny_cfg
from models import build_model
from models.build import load_initial_weights
from models.mae import patch_grid, patch_mask_from_bins, patches_to_bins, random_patch_mask
from processors.core.errors import UserError
from processors.core.checkpoint_io import save_checkpoint
from processors.core.config_io import apply_overrides
from training.configure import build_config, load_config
from training.losses import masked_mse
from training.trainer import Trainer

TINY = {"patch_mels": 8, "patch_frames": 4, "dim": 16, "depth": 2, "heads": 2,
        "decoder_dim": 8, "decoder_depth": 1, "decoder_heads": 2}


def mae_cfg(tiny_cfg, *overrides, crop: int = 32, **params):
    data = tiny_cfg.to_dict()
    data["model"] = {"name": "mae", "params": {**TINY, **params}}
    data["data"]["crop_frames"] = crop
    data["loss"]["weights"] = {"mse": 1.0}
    return build_config(apply_overrides(data, list(overrides)))


def mae(tiny_cfg, seed: int = 0, **params):
    cfg = mae_cfg(tiny_cfg, **params)
    torch.manual_seed(seed)
    return build_model(cfg), cfg


def gap_batch(n_mels: int, frames: int, gaps=((10, 17), (21, 22)), b: int = 2):
    torch.manual_seed(1)
    target = torch.rand(b, 1, n_mels, frames)
    mask = torch.zeros_like(target)
    for s, e in gaps:
        mask[..., s:e] = 1.0
    return target * (1 - mask), target, mask


def test_patch_grid_comes_from_the_config(tiny_cfg):
    model, cfg = mae(tiny_cfg)                                  # 40 Mels x 32 frames, 8 x 4 patches
    assert model.grid == (5, 8) and model.pos.shape == (40, 16)
    other, _ = mae(tiny_cfg, patch_mels=16, patch_frames=8)     # partial patches are padded, not dropped
    assert other.grid == (3, 4)
    assert patch_grid(37, 45, (8, 4)) == (5, 12)
    shipped = load_config(ROOT / "configs" / "mae_ljspeech.yaml")
    big = build_model(shipped)
    p = shipped.model.params
    assert big.grid == (shipped.audio.n_mels // p["patch_mels"], shipped.data.crop_frames // p["patch_frames"])


def test_random_patch_mask_hides_exactly_the_ratio():
    torch.manual_seed(0)
    hidden = random_patch_mask(6, 40, 0.75)
    assert hidden.shape == (6, 40) and (hidden.sum(dim=1) == 30).all()
    assert not torch.equal(hidden[0], hidden[1]), "each item draws its own mask"
    assert (random_patch_mask(3, 4, 0.99).sum(dim=1) == 3).all(), "always one patch visible"


def test_pretraining_batch_masks_whole_patches_at_the_ratio(tiny_cfg):
    model, _ = mae(tiny_cfg, mask_mode="random_patches", mask_ratio=0.8)
    _, target, mask = gap_batch(40, 32)
    torch.manual_seed(3)
    batch = model.training_batch({"masked": target * (1 - mask), "target": target, "mask": mask})
    new = batch["mask"]
    assert new.shape == target.shape and set(new.unique().tolist()) == {0.0, 1.0}
    assert (new.mean(dim=(1, 2, 3)) == 0.8).all()                    # 32 of 40 patches per item
    hidden = patch_mask_from_bins(new, model.patch, model.grid)
    assert (hidden.sum(dim=1) == 32).all()
    assert torch.equal(patches_to_bins(hidden, model.patch, model.grid, model.shape), new)   # whole patches only
    assert torch.equal(batch["masked"], target * (1 - new)) and batch["target"] is target
    gap_model, _ = mae(tiny_cfg)                                     # gap mode keeps the batch as it is
    plain = {"masked": target * (1 - mask), "target": target, "mask": mask}
    assert gap_model.training_batch(plain) is plain


def test_gap_hides_every_patch_it_touches(tiny_cfg):
    model, _ = mae(tiny_cfg)
    _, _, mask = gap_batch(40, 32, gaps=((10, 17),))
    hidden = patch_mask_from_bins(mask, model.patch, model.grid).reshape(-1, *model.grid)
    columns = hidden[0].all(dim=0).nonzero().flatten().tolist()
    assert columns == [2, 3, 4]                                      # frames 8-19: partly known at both ends
    assert not hidden[0][:, [0, 1, 5, 6, 7]].any()


def test_visible_context_passes_through_exactly(tiny_cfg):
    for mode in ("gap", "random_patches"):
        model, _ = mae(tiny_cfg, mask_mode=mode)
        masked, target, mask = gap_batch(40, 32)
        batch = model.training_batch({"masked": masked, "target": target, "mask": mask})
        for train in (True, False):
            model.train(train)
            out = model(batch["masked"], batch["mask"])
            known = batch["mask"] == 0
            assert torch.equal(out[known], batch["masked"][known])
            assert not torch.equal(out[~known], batch["masked"][~known])


def test_encoder_sees_only_visible_patches(tiny_cfg):
    """Whatever lies under a hidden patch, its known part beside a gap included, changes nothing."""
    model, _ = mae(tiny_cfg)
    masked, _, mask = gap_batch(40, 32)
    hidden_bins = patches_to_bins(patch_mask_from_bins(mask, model.patch, model.grid), model.patch, model.grid,
                                  model.shape)
    assert (hidden_bins - mask).sum() > 0, "the gap should only partly cover some patches"
    noisy = masked + 5.0 * hidden_bins * torch.randn_like(masked)
    with torch.no_grad():
        assert torch.equal(model.predict(masked, mask), model.predict(noisy, mask))


def test_items_of_a_batch_do_not_see_each_other(tiny_cfg):
    """Rows with fewer visible patches are padded for the encoder; the padding is never attended to."""
    model, _ = mae(tiny_cfg)
    masked, _, mask = gap_batch(40, 32)
    mask[1, ..., 2:9] = 1.0                                        # item 1: fewer visible patches
    masked = masked * (1 - mask)
    with torch.no_grad():
        both = model(masked, mask)
        for i in range(2):
            alone = model(masked[i:i + 1], mask[i:i + 1])
            torch.testing.assert_close(alone, both[i:i + 1], atol=1e-5, rtol=0)


def test_loss_ignores_visible_patches(tiny_cfg):
    model, _ = mae(tiny_cfg, mask_mode="random_patches")
    _, target, mask = gap_batch(40, 32)
    batch = model.training_batch({"masked": target, "target": target, "mask": mask})
    masked, mask = batch["masked"], batch["mask"]
    raw = model.predict(masked, mask).detach().requires_grad_(True)    # the decoder's every patch
    loss = masked_mse(masked * (1 - mask) + raw * mask, target, mask)
    loss.backward()
    assert (raw.grad[mask == 0] == 0).all() and raw.grad[mask == 1].abs().sum() > 0
    other_context = target + 3.0 * (1 - mask)                          # a different target where visible
    assert masked_mse(raw, other_context, mask).item() == masked_mse(raw, target, mask).item()


def test_mask_params_are_validated(tiny_cfg):
    with pytest.raises(UserError, match=r"model\.params\.mask_ratio"):
        mae_cfg(tiny_cfg, mask_ratio=1.5)
    with pytest.raises(UserError, match=r"model\.params\.mask_mode"):
        mae_cfg(tiny_cfg, mask_mode="blocks")
    with pytest.raises(UserError, match=r"model\.params\.dim"):
        mae_cfg(tiny_cfg, dim=18)


# --------------------------------------------------------------------------- fine-tuning

def save_mae(path, cfg, model):
    save_checkpoint(path, {"config": cfg.to_dict(), "model": model.state_dict()})
    return path


def test_init_from_loads_the_pretrained_weights(tiny_cfg, tmp_path):
    pre, pre_cfg = mae(tiny_cfg, seed=1, mask_mode="random_patches")
    path = save_mae(tmp_path / "pre.pt", pre_cfg, pre)
    model, cfg = mae(tiny_cfg, seed=2)
    load_initial_weights(model, cfg, str(path))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), pre.state_dict().values()))


@pytest.mark.parametrize("problem", ["missing", "other_size", "other_model", "other_audio"])
def test_unusable_init_from_is_a_one_line_error(tiny_cfg, tmp_path, problem):
    path = tmp_path / "pre.pt"
    if problem == "other_size":
        save_mae(path, *reversed(mae(tiny_cfg, dim=32)))
    elif problem == "other_model":
        unet_cfg = build_config(apply_overrides(tiny_cfg.to_dict(), []))
        save_mae(path, unet_cfg, build_model(unet_cfg))
    elif problem == "other_audio":
        other = mae_cfg(tiny_cfg, "audio.f_max=7000")
        save_mae(path, other, build_model(other))
    model, cfg = mae(tiny_cfg)
    with pytest.raises(UserError) as err:
        load_initial_weights(model, cfg, str(path))
    message = str(err.value)
    assert message.startswith("train.init_from: ") and "\n" not in message


def test_trainer_starts_from_init_from_and_trains_both_modes(tmp_path, ljspeech_dir):
    tiny = make_tiny_cfg(ljspeech_dir, tmp_path)
    pre_cfg = mae_cfg(tiny, "run_name=pre", "train.max_steps=2", mask_mode="random_patches")
    summary = Trainer(pre_cfg).fit()
    assert summary["step"] == 2 and summary["val_mse"] == summary["val_mse"]     # finite, not nan
    best = tmp_path / "checkpoints" / "pre" / "best.pt"
    fine_cfg = mae_cfg(tiny, "run_name=fine", "train.max_steps=2", f"train.init_from={best}")
    trainer = Trainer(fine_cfg)
    saved = torch.load(best, weights_only=False)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in trainer.model.state_dict().items())
    assert trainer.fit()["step"] == 2
