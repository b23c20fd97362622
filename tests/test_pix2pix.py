"""Pix2Pix: a GAN step trains both networks; checkpoints carry both, resume restores both."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import make_tiny_cfg, write_ljspeech
from processors.core.errors import UserError
from processors.core.checkpoint_io import load_checkpoint
from models.build import load_inpainter
from processors.core.config_io import apply_overrides
from training.configure import build_config
from training.trainer import Trainer

PIX2PIX = ["model.name=pix2pix", "model.params={base_channels: 4, depth: 2, disc_channels: 4, disc_layers: 2}",
           "loss.weights.adversarial=0.1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_ljspeech(tmp_path_factory.mktemp("pix2pix") / "LJSpeech-1.1")


def gan_cfg(data_dir, out_dir, *extra):
    return make_tiny_cfg(data_dir, out_dir, *PIX2PIX, *extra)


def test_generator_and_discriminator_have_separate_optimisers(data_dir, tmp_path):
    trainer = Trainer(gan_cfg(data_dir, tmp_path))
    model = trainer.model
    in_opt = {g: {id(p) for pg in o.param_groups for p in pg["params"]} for g, o in trainer.optimizers.items()}
    assert set(in_opt) == {"model", "discriminator"}
    assert in_opt["model"] == {id(p) for p in model.generator.parameters()}
    assert in_opt["discriminator"] == {id(p) for p in model.discriminator.parameters()}


def test_gan_step_trains_both_networks(data_dir, tmp_path):
    trainer = Trainer(gan_cfg(data_dir, tmp_path, "train.weight_decay=0", "train.warmup_steps=1"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    batch = next(iter(trainer.task.train_batches(0)))
    loss, terms = trainer.train_step(batch)
    assert {"mse", "l1", "boundary", "adversarial", "d", "d_real", "d_fake"} <= set(terms)
    assert terms["d"] == pytest.approx(0.5 * (terms["d_real"] + terms["d_fake"]))
    for net in ("generator", "discriminator"):
        module = getattr(trainer.model, net)
        assert all(p.grad is not None for p in module.parameters()), net
        changed = [k for k, v in trainer.model.state_dict().items()
                   if k.startswith(net + ".") and not torch.equal(v, before[k])]
        assert changed, f"no {net} weight changed"


def optimiser_states_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, dict):
            if not optimiser_states_equal(x, y):
                return False
        elif isinstance(x, torch.Tensor):
            if not torch.equal(x, y):
                return False
        elif x != y:
            return False
    return True


def test_checkpoint_holds_both_networks_and_resume_restores_both_optimisers(data_dir, tmp_path):
    """2 + 2 steps (constant schedule after warm-up) equal 4 straight steps, bit for bit."""
    common = ["train.schedule=constant", "train.ckpt_every=2", "train.val_every=2"]
    straight = gan_cfg(data_dir, tmp_path / "a", "train.max_steps=4", *common)
    Trainer(straight).fit()
    first = gan_cfg(data_dir, tmp_path / "b", "train.max_steps=2", *common)
    Trainer(first).fit()
    last = Path(first.train.checkpoints_dir) / first.run_name / "last.pt"
    state = load_checkpoint(last)
    assert any(k.startswith("discriminator.") for k in state["model"])
    assert any(k.startswith("generator.") for k in state["model"])
    assert set(state["aux_optimizers"]) == {"discriminator"}

    cfg = build_config(apply_overrides(state["config"], ["train.max_steps=4"]))
    resumed = Trainer(cfg, resume=state)
    assert optimiser_states_equal(resumed.optimizers["model"].state_dict(), state["optimizer"])
    assert optimiser_states_equal(resumed.optimizers["discriminator"].state_dict(),
                                  state["aux_optimizers"]["discriminator"]["optimizer"])
    assert resumed.schedulers["discriminator"].last_epoch == 2
    resumed.fit()

    a = load_checkpoint(Path(straight.train.checkpoints_dir) / straight.run_name / "last.pt")
    b = load_checkpoint(last)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert optimiser_states_equal(a["aux_optimizers"], b["aux_optimizers"])
    rows = lambda c: (Path(c.train.runs_dir) / c.run_name / "losses.csv").read_text()  # noqa: E731
    assert rows(straight) == rows(cfg)


def test_checkpoint_without_the_discriminator_optimiser_is_a_user_error(data_dir, tmp_path):
    cfg = gan_cfg(data_dir, tmp_path, "train.max_steps=1")
    Trainer(cfg).fit()
    state = load_checkpoint(Path(cfg.train.checkpoints_dir) / cfg.run_name / "last.pt")
    del state["aux_optimizers"]
    with pytest.raises(UserError, match="does not match"):
        Trainer(cfg, resume=state)


def test_logs_both_losses_and_inference_uses_the_generator(data_dir, tmp_path):
    cfg = gan_cfg(data_dir, tmp_path, "train.max_steps=2", "train.val_every=2")
    Trainer(cfg).fit()
    acc = EventAccumulator(str(Path(cfg.train.runs_dir) / cfg.run_name), size_guidance={"scalars": 0}).Reload()
    assert {"train/loss", "train/loss_adversarial", "train/loss_d", "train/loss_d_real", "train/loss_d_fake",
            "val/mse"} <= set(acc.Tags()["scalars"])
    model, _ = load_inpainter(Path(cfg.train.checkpoints_dir) / cfg.run_name / "best.pt")
    masked = torch.rand(1, 1, cfg.audio.n_mels, cfg.data.crop_frames)
    mask = torch.zeros_like(masked)
    mask[..., 10:16] = 1.0
    with torch.no_grad():
        out = model(masked * (1 - mask), mask)
    assert torch.equal(out, model.generator(masked * (1 - mask), mask))


def test_adversarial_weight_needs_a_model_with_a_discriminator(tmp_path):
    cfg = make_tiny_cfg(tmp_path, tmp_path)
    with pytest.raises(UserError, match=r"loss\.weights\.adversarial: unknown loss for model 'unet'"):
        build_config(apply_overrides(cfg.to_dict(), ["loss.weights.adversarial=0.1"]))


@pytest.mark.parametrize("weights, runs", [
    (["loss.weights.adversarial=0"], False),
    (["loss.weights.adversarial=0", "loss.weights.feature_matching=0.5"], True),
], ids=["both zero", "feature matching only"])
def test_discriminator_runs_only_for_terms_that_weigh(weights, runs, data_dir, tmp_path):
    """Adversarial weight 0: no adversarial term; feature matching 0 too: the discriminator
    neither runs nor trains (it would serve nothing)."""
    trainer = Trainer(gan_cfg(data_dir, tmp_path, *weights))
    calls = []
    trainer.model.discriminator.net[0].register_forward_hook(lambda *args: calls.append(1))
    before = {k: v.clone() for k, v in trainer.model.discriminator.state_dict().items()}
    _, terms = trainer.train_step(next(iter(trainer.task.train_batches(0))))
    assert "adversarial" not in terms
    assert ("feature_matching" in terms and "d" in terms) == runs
    assert bool(calls) == runs
    unchanged = all(torch.equal(v, before[k]) for k, v in trainer.model.discriminator.state_dict().items())
    assert unchanged != runs
