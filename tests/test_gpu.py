"""GPU-only paths: fp16 autocast with its GradScaler (and the weight average beside it), and NCCL
under torchrun. Marked ``gpu``: they skip without CUDA (NCCL needs two GPUs). Run them with
``make test-gpu``."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import make_tiny_cfg, write_ljspeech
from processors.core.checkpoint_io import load_checkpoint
from training.trainer import Trainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_mixed_precision_on_cuda_trains_resumes_and_keeps_the_loss_scale(tmp_path, ljspeech_dir, amp):
    cfg = make_tiny_cfg(ljspeech_dir, tmp_path, "train.device=cuda", f"train.amp={amp}", "train.max_steps=4",
                        "train.ckpt_every=2", "train.ema_decay=0.9")      # the weight average on the GPU too
    summary = Trainer(cfg).fit()
    assert summary["step"] == 4 and math.isfinite(summary["best_val_mse"])
    state = load_checkpoint(tmp_path / "checkpoints" / cfg.run_name / "last.pt")
    assert state["raw_weights"] and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    if amp == "fp16":      # the scaler ran: its scale is saved, and it is the one a resume continues from
        scale = state["scalers"]["model"]["scale"]
        assert 0 < scale <= 2.0 ** 16
    resumed_cfg = make_tiny_cfg(ljspeech_dir, tmp_path, "train.device=cuda", f"train.amp={amp}",
                                "train.max_steps=6")
    resumed = Trainer(resumed_cfg, resume=state)
    if amp == "fp16":
        assert resumed.scalers["model"].get_scale() == scale
    assert resumed.fit()["step"] == 6
    assert all(p.device.type == "cuda" for p in resumed.model.parameters())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL under torchrun needs two GPUs (one per process)")
def test_two_gpus_under_torchrun_follow_the_single_gpu_trajectory(tmp_path):
    from test_distributed import one_and_two_processes
    data = write_ljspeech(tmp_path / "LJSpeech-1.1", n_clips=6)
    cfg = make_tiny_cfg(data, tmp_path, "data.mask.mode=fixed", "data.mask.gap_frames=6", "train.batch_size=4",
                        "train.schedule=constant", "train.max_steps=4", "train.device=cuda")
    single, double = one_and_two_processes(cfg, tmp_path)
    np.testing.assert_allclose(double[:, 1], single[:, 1], rtol=1e-3)
