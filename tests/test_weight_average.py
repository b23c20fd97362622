"""train.ema_decay: the averaged weights are what validation scores and checkpoints hold as the
model; the raw ones travel beside them, so a resumed run goes on bit for bit."""
from __future__ import annotations

import pytest
import torch

from conftest import make_tiny_cfg, stop_after, write_ljspeech
from processors.core.checkpoint_io import load_checkpoint
from processors.core.errors import UserError
from training.trainer import Trainer
from training.weight_average import WeightAverage
from test_train import last_pt, read_losses, resume_cfg

PIX2PIX = ["model.name=pix2pix", "model.params={base_channels: 4, depth: 2, disc_channels: 4, disc_layers: 2}",
           "loss.weights={mse: 1.0, adversarial: 0.05, feature_matching: 1.0}"]


def test_average_follows_the_ramped_decay_and_swaps_back():
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    avg = WeightAverage(dict(net.named_parameters()), decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    avg.update(step=1)                    # ramp: min(0.9, 2 / 11) keeps 2/11 of the old average
    assert torch.allclose(avg.shadow["weight"], torch.full((1, 2), 9 / 11))
    avg.update(step=1000)                 # ramp over: the decay itself
    assert torch.allclose(avg.shadow["weight"], torch.full((1, 2), 0.9 * 9 / 11 + 0.1))
    with avg.swapped_in() as raw:
        assert torch.equal(net.weight, avg.shadow["weight"])
        assert torch.equal(raw["weight"], torch.ones(1, 2))
    assert torch.equal(net.weight, torch.ones(1, 2))


def test_checkpoint_holds_the_average_as_the_model_and_resumes_bit_exactly(tmp_path):
    data = write_ljspeech(tmp_path / "LJSpeech-1.1")
    ema = ["train.ema_decay=0.5", "train.ckpt_every=2", *PIX2PIX]
    straight = make_tiny_cfg(data, tmp_path / "a", "train.max_steps=4", *ema)
    Trainer(straight).fit()
    state = load_checkpoint(last_pt(straight))
    # the generator's weights are averaged; the discriminator's are not, nor kept twice
    raw = state["raw_weights"]
    assert raw and all(k.startswith("generator.") for k in raw)
    assert any(not torch.equal(state["model"][k], v) for k, v in raw.items())
    assert all(torch.equal(state["model"][k], v) for k, v in state["model"].items() if k.startswith("disc"))
    # stopped at step 2 and resumed: the same losses, the same average and raw weights
    first = make_tiny_cfg(data, tmp_path / "b", "train.max_steps=4", *ema)
    trainer = Trainer(first)
    stop_after(trainer, 2)
    assert trainer.fit()["step"] == 2
    cfg, resumed = resume_cfg(last_pt(first))
    Trainer(cfg, resume=resumed).fit()
    assert read_losses(cfg) == read_losses(straight)
    end = load_checkpoint(last_pt(cfg))
    for key in ("model", "raw_weights"):
        assert all(torch.equal(end[key][k], v) for k, v in state[key].items()), key


def test_validation_scores_the_average_and_training_goes_on_from_the_raw_weights(tmp_path):
    data = write_ljspeech(tmp_path / "LJSpeech-1.1")
    cfg = make_tiny_cfg(data, tmp_path, "train.max_steps=3", "train.val_every=3", "train.ema_decay=0.5")
    trainer = Trainer(cfg)
    seen = []
    validate = trainer.task.validate

    def spy(loop, writer):
        seen.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
        return validate(loop, writer)

    trainer.task.validate = spy
    trainer.fit()
    state = load_checkpoint(last_pt(cfg))
    assert len(seen) == 1 and all(torch.equal(seen[0][k], v) for k, v in state["model"].items())
    now = trainer.model.state_dict()
    assert all(torch.equal(now[k], v) for k, v in state["raw_weights"].items())
    assert any(not torch.equal(now[k], state["model"][k]) for k in state["raw_weights"])


@pytest.mark.parametrize("value", ["1.0", "-0.1"])
def test_decay_outside_zero_one_is_a_user_error(tmp_path, value):
    data = write_ljspeech(tmp_path / "LJSpeech-1.1")
    with pytest.raises(UserError, match="train.ema_decay"):
        make_tiny_cfg(data, tmp_path, f"train.ema_decay={value}")


def test_resumed_with_the_average_off_training_goes_on_from_the_raw_weights(tmp_path):
    data = write_ljspeech(tmp_path / "LJSpeech-1.1")
    cfg = make_tiny_cfg(data, tmp_path, "train.max_steps=2", "train.ema_decay=0.5")
    Trainer(cfg).fit()
    cfg2, state = resume_cfg(last_pt(cfg), "train.ema_decay=0", "train.max_steps=3")
    resumed = Trainer(cfg2, resume=state)
    now = resumed.model.state_dict()
    assert resumed.average is None
    assert all(torch.equal(now[k], v) for k, v in state["raw_weights"].items())
