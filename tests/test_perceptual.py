"""Perceptual loss: a frozen MAE encoder's features, checked at start-up, never trained."""
from __future__ import annotations

import pytest
import torch

from models import build_model
from processors.core.errors import UserError
from processors.core.checkpoint_io import save_checkpoint
from processors.core.config_io import apply_overrides
from training.configure import build_config
from training.losses import build_losses, build_perceptual
from training.trainer import Trainer

TINY_MAE = {"patch_mels": 8, "patch_frames": 4, "dim": 16, "depth": 2, "heads": 2,
            "decoder_dim": 8, "decoder_depth": 1, "decoder_heads": 2}


def with_overrides(cfg, *overrides):
    return build_config(apply_overrides(cfg.to_dict(), list(overrides)))


def save_model(path, cfg):
    torch.manual_seed(0)
    save_checkpoint(path, {"config": cfg.to_dict(), "model": build_model(cfg).state_dict()})
    return path


@pytest.fixture
def mae_ckpt(tiny_cfg, tmp_path):
    """A (randomly initialised) tiny MAE checkpoint with the tiny config's audio and crop."""
    data = tiny_cfg.to_dict()
    data["model"] = {"name": "mae", "params": TINY_MAE}
    return save_model(tmp_path / "mae.pt", build_config(data))


@pytest.fixture
def perceptual_cfg(tiny_cfg, mae_ckpt):
    return with_overrides(tiny_cfg, "loss.weights.perceptual=1.0", f"loss.perceptual.checkpoint={mae_ckpt}",
                          "loss.perceptual.layers=[1, 2]")


def example(cfg):
    torch.manual_seed(1)
    target = torch.rand(2, 1, cfg.audio.n_mels, cfg.data.crop_frames)
    mask = torch.zeros_like(target)
    mask[..., 10:17] = 1.0
    return target, mask


@pytest.mark.parametrize("distance", ["l1", "mse"])
def test_zero_for_identical_inputs_positive_otherwise(perceptual_cfg, distance):
    cfg = with_overrides(perceptual_cfg, f"loss.perceptual.distance={distance}")
    loss = build_perceptual(cfg, "cpu")
    target, mask = example(cfg)
    assert loss(target.clone(), target, mask).item() == 0.0
    assert loss(target.clone().requires_grad_(True), target, mask).item() == 0.0     # same with gradients on
    assert loss(target + 5.0 * (1 - mask), target, mask).item() == 0.0              # the context is not the fill's
    pred = (target + 0.3 * mask).requires_grad_(True)
    value = loss(pred, target, mask)
    assert value.item() > 0
    value.backward()
    assert (pred.grad[mask == 0] == 0).all() and pred.grad[mask == 1].abs().sum() > 0


def test_feature_net_is_frozen_and_its_weights_never_change(perceptual_cfg):
    trainer = Trainer(with_overrides(perceptual_cfg, "train.max_steps=3"))
    net = trainer.task.losses["perceptual"].net
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    net_before = {k: v.clone() for k, v in net.state_dict().items()}
    model_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    summary = trainer.fit()
    assert "val_perceptual" in summary
    assert all(torch.equal(v, net_before[k]) for k, v in net.state_dict().items())
    assert not net.training
    assert any(not torch.equal(v, model_before[k]) for k, v in trainer.model.state_dict().items())
    own = {id(p) for group in trainer.optimizers.values() for g in group.param_groups for p in g["params"]}
    assert not own & {id(p) for p in net.parameters()}, "the feature net is in no optimiser"


def test_checkpoint_does_not_carry_the_feature_net(perceptual_cfg):
    trainer = Trainer(with_overrides(perceptual_cfg, "train.max_steps=1"))
    assert not any(k.startswith("net.") or "encoder" in k for k in trainer.state()["model"])


def one_line_user_error(fn, match: str) -> str:
    with pytest.raises(UserError, match=match) as err:
        fn()
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("problem, match", [
    ("missing", r"loss\.perceptual\.checkpoint: checkpoint not found"),
    ("not_mae", r"loss\.perceptual\.checkpoint: .* holds a 'unet' model"),
    ("other_mels", r"loss\.perceptual\.checkpoint: .* other Mel settings \(audio\.n_mels"),
    ("other_crop", r"loss\.perceptual\.checkpoint: .* other Mel settings \(data\.crop_frames"),
    ("layer", r"loss\.perceptual\.layers: 3 is not a block"),
])
def test_unusable_feature_net_is_a_one_line_error_at_start_up(perceptual_cfg, tmp_path, problem, match):
    cfg = perceptual_cfg
    if problem == "missing":
        cfg = with_overrides(cfg, f"loss.perceptual.checkpoint={tmp_path / 'nope.pt'}")
    elif problem == "not_mae":
        unet = with_overrides(cfg, "loss.weights.perceptual=0")
        cfg = with_overrides(cfg, f"loss.perceptual.checkpoint={save_model(tmp_path / 'unet.pt', unet)}")
    elif problem in ("other_mels", "other_crop"):
        change = "audio.n_mels=32" if problem == "other_mels" else "data.crop_frames=40"
        other = with_overrides(cfg, "loss.weights.perceptual=0", "model.name=mae", f"model.params={TINY_MAE}",
                               change)
        cfg = with_overrides(cfg, f"loss.perceptual.checkpoint={save_model(tmp_path / 'other.pt', other)}")
    else:
        cfg = with_overrides(cfg, "loss.perceptual.layers=[1, 3]")
    one_line_user_error(lambda: build_losses(cfg), match)
    one_line_user_error(lambda: Trainer(cfg), match)         # before any Mel is computed


def test_perceptual_weight_without_checkpoint_fails_in_the_config(tiny_cfg):
    one_line_user_error(lambda: with_overrides(tiny_cfg, "loss.weights.perceptual=0.5"),
                        r"loss\.weights\.perceptual: needs loss\.perceptual\.checkpoint")
    one_line_user_error(lambda: with_overrides(tiny_cfg, "loss.perceptual.distance=cosine"),
                        r"loss\.perceptual\.distance")
