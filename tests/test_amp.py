"""Mixed precision (train.amp) and its validation."""
from __future__ import annotations

import math

import pytest

from conftest import make_tiny_cfg
from processors.core.errors import UserError
from training.trainer import Trainer
from test_train import read_losses


def test_bf16_on_cpu_keeps_the_loss_finite(tmp_path, ljspeech_dir):
    cfg = make_tiny_cfg(ljspeech_dir, tmp_path, "train.amp=bf16", "train.max_steps=4")
    summary = Trainer(cfg).fit()
    assert summary["step"] == 4 and math.isfinite(summary["best_val_mse"])
    assert all(math.isfinite(float(v)) for _, v in read_losses(cfg))


@pytest.mark.parametrize("value, message", [
    ("fp8", "train.amp: must be 'off', 'bf16' or 'fp16'"),
    ("fp16", "train.amp: 'fp16' needs a CUDA device"),       # the tiny config's device is 'cpu'
])
def test_bad_amp_settings_are_one_line_user_errors(tmp_path, ljspeech_dir, value, message):
    with pytest.raises(UserError, match=message) as err:
        make_tiny_cfg(ljspeech_dir, tmp_path, f"train.amp={value}")
    assert "\n" not in str(err.value)


def test_fp16_with_auto_device_and_no_cuda_is_refused_before_training(tmp_path, ljspeech_dir, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = make_tiny_cfg(ljspeech_dir, tmp_path, "train.amp=fp16", "train.device=auto")
    with pytest.raises(UserError, match="needs a CUDA device"):
        Trainer(cfg)


def test_fp16_loss_scale_is_saved_and_restored(tmp_path, ljspeech_dir):
    # fp16 needs CUDA, so the scaler is swapped in by hand: what matters is that the
    # checkpoint carries its scale and a resumed run continues from it, not from 2**16
    import torch
    cfg = make_tiny_cfg(ljspeech_dir, tmp_path, "train.max_steps=1")
    trainer = Trainer(cfg)
    trainer.scalers["model"] = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    state = trainer.state()
    assert state["scalers"]["model"]["scale"] == 2.0 ** 10

    resumed = Trainer(cfg, resume=state)
    resumed.scalers["model"] = torch.amp.GradScaler("cpu")      # a fresh fp16 run starts at 2**16
    resumed._restore(state)
    assert resumed.scalers["model"].get_scale() == 2.0 ** 10
    Trainer(cfg, resume=trainer.state() | {"scalers": {"model": {}}})   # saved with fp16 off: no error


def test_a_cuda_random_state_resumes_on_a_machine_with_fewer_gpus(monkeypatch):
    # a run on several GPUs wrote one state per GPU before; now the current device's alone
    import torch
    from processors.core.checkpoint_io import rng_state, set_rng_state
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda: torch.tensor([7], dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", restored.append)
    state = rng_state()
    assert torch.equal(state["cuda"], torch.tensor([7], dtype=torch.uint8))
    set_rng_state(state)
    set_rng_state(state | {"cuda": [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)]})
    assert [int(s[0]) for s in restored] == [7, 1]


def test_a_cuda_device_the_machine_lacks_is_a_one_line_error(monkeypatch):
    import torch
    from training.loop import pick_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(UserError, match="has 1 CUDA device"):
        pick_device("cuda:1")
