"""Mixed precision (train.amp) and its validation."""
from __future__ import annotations

import math

import pytest

from conftest import make_tiny_cfg
from processors.errors import UserError
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
