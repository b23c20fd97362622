"""The inpainter contract, for every registered model:
``forward(masked (B, 1, n_mels, T), mask) -> (B, 1, n_mels, T)`` with the context passed through."""
from __future__ import annotations

import pytest
import torch

from conftest import ROOT
from models import MODELS, build_model
from training.configure import build_config, load_config
from training.losses import masked_mse

SMALL_PARAMS = {
    "unet": {"base_channels": 4, "depth": 2},
    "fc": {"hidden": 32, "layers": 2},
    "mae": {"patch_mels": 8, "patch_frames": 4, "dim": 16, "depth": 1, "heads": 2,
            "decoder_dim": 8, "decoder_depth": 1, "decoder_heads": 2},
    "pix2pix": {"base_channels": 4, "depth": 2, "disc_channels": 4, "disc_layers": 2},
}
FIXED_SIZE = {"fc", "mae"}   # models whose input must be exactly (n_mels, crop_frames)
CROP = 36                 # not a power of two


def small_model(tiny_cfg, name: str, crop: int = CROP):
    data = tiny_cfg.to_dict()
    data["model"] = {"name": name, "params": SMALL_PARAMS.get(name, {})}
    data["data"]["crop_frames"] = crop
    torch.manual_seed(0)
    return build_model(build_config(data))


def batch(n_mels: int, frames: int, gaps=((10, 17), (25, 28)), b: int = 2):
    torch.manual_seed(1)
    target = torch.rand(b, 1, n_mels, frames)
    mask = torch.zeros(b, 1, n_mels, frames)
    for s, e in gaps:
        mask[..., s:e] = 1.0
    mask[1, ..., 4:6] = 1.0                 # items of a batch may have different masks
    return target * (1 - mask), target, mask


def shapes_for(name: str, n_mels: int):
    if name in FIXED_SIZE:
        return [(n_mels, CROP)]
    return [(n_mels, CROP), (n_mels, 37), (n_mels, 50), (37, 45)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape_equals_input_shape(tiny_cfg, name):
    model = small_model(tiny_cfg, name).eval()
    for n_mels, frames in shapes_for(name, tiny_cfg.audio.n_mels):
        masked, _, mask = batch(n_mels, frames)
        with torch.no_grad():
            out = model(masked, mask)
        assert out.shape == masked.shape, (n_mels, frames)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_context_passes_through_exactly(tiny_cfg, name):
    model = small_model(tiny_cfg, name)
    masked, _, mask = batch(tiny_cfg.audio.n_mels, CROP)
    for mode in (model.train, model.eval):
        mode()
        out = model(masked, mask)
        known = mask == 0
        assert torch.equal(out[known], masked[known])
        assert not torch.equal(out[~known], masked[~known]), "the gap should be the network's"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradient_flows_to_every_parameter(tiny_cfg, name):
    """... of the inpainting network (a GAN's discriminator learns from its own loss)."""
    model = small_model(tiny_cfg, name).train()
    masked, target, mask = batch(tiny_cfg.audio.n_mels, CROP)
    masked_mse(model(masked, mask), target, mask).backward()
    trained = {id(p) for p in model.param_groups()["model"]}
    for pname, p in model.named_parameters():
        if id(p) not in trained:
            continue
        assert p.grad is not None, f"no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), pname
    assert sum(p.grad.abs().sum() for p in model.param_groups()["model"]) > 0


@pytest.mark.parametrize("name", sorted(FIXED_SIZE))
def test_fixed_size_model_rejects_other_sizes(tiny_cfg, name):
    model = small_model(tiny_cfg, name)
    masked, _, mask = batch(tiny_cfg.audio.n_mels, CROP + 1)
    with pytest.raises(ValueError, match="expects"):
        model(masked, mask)


def test_registry_names_and_params_dataclasses():
    assert {"unet", "fc", "mae", "pix2pix"} <= set(MODELS)
    for name, (cls, params) in MODELS.items():
        assert cls.registry_name == name
        params()          # every field has a default


def test_unet_built_from_shipped_config_handles_its_crop():
    cfg = load_config(ROOT / "configs" / "unet_ljspeech.yaml", ["model.params.base_channels=4"])
    model = build_model(cfg).eval()
    masked, _, mask = batch(cfg.audio.n_mels, cfg.data.crop_frames)
    with torch.no_grad():
        assert model(masked, mask).shape == masked.shape
