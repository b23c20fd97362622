"""Multi-process training under torchrun, with gloo on the CPU: the same run as one process."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, make_tiny_cfg, run_script, write_ljspeech
from processors.core.errors import UserError
from processors.core.checkpoint_io import load_checkpoint
from processors.core.config_io import save_config
from training.distributed import init_world


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(ROOT / "scripts" / "train.py"), *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_and_two_processes(cfg, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """``cfg`` trained as one process (run "one") and as two under torchrun (run "two"): the
    (step, loss) rows of each run's losses.csv."""
    config = tmp_path / "run.yaml"
    save_config(cfg, config)
    one = run_script("train.py", "--config", config, "--set", "run_name=one", timeout=240)
    assert one.returncode == 0, one.stderr
    two = torchrun(2, "--config", config, "--set", "run_name=two")
    assert two.returncode == 0, two.stderr
    return tuple(np.loadtxt(tmp_path / "runs" / run / "losses.csv", delimiter=",") for run in ("one", "two"))


def test_two_processes_follow_the_single_process_trajectory_through_a_resume(tmp_path):
    # Gaps of one fixed length: every item has as many masked bins, so the mean of the two
    # processes' masked means is the global batch's (with gaps of random length it is close).
    data = write_ljspeech(tmp_path / "LJSpeech-1.1", n_clips=6)
    cfg = make_tiny_cfg(data, tmp_path, "data.mask.mode=fixed", "data.mask.gap_frames=6", "train.batch_size=4",
                        "train.schedule=constant", "train.max_steps=6", "train.ckpt_every=3")
    config = tmp_path / "tiny.yaml"
    save_config(cfg, config)

    one = run_script("train.py", "--config", config, "--set", "run_name=one", timeout=240)
    assert one.returncode == 0, one.stderr
    first = torchrun(2, "--config", config, "--set", "run_name=two", "--set", "train.max_steps=3")
    assert first.returncode == 0, first.stderr
    resumed = torchrun(2, "--resume", tmp_path / "checkpoints" / "two" / "last.pt", "--set", "train.max_steps=6")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("step=6") == 1          # only rank 0 reports

    single = np.loadtxt(tmp_path / "runs" / "one" / "losses.csv", delimiter=",")
    double = np.loadtxt(tmp_path / "runs" / "two" / "losses.csv", delimiter=",")
    assert double[:, 0].tolist() == [1, 2, 3, 4, 5, 6]   # each step once: rank 1 writes nothing
    np.testing.assert_allclose(double[:, 1], single[:, 1], rtol=1e-4)
    a = load_checkpoint(tmp_path / "checkpoints" / "one" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "checkpoints" / "two" / "last.pt")["model"]
    for name in a:      # Adam divides by the gradient's size: reduction-order noise shows as ~1e-6 steps
        torch.testing.assert_close(b[name], a[name], rtol=1e-3, atol=1e-5)


def test_an_mae_draws_its_patch_masks_for_the_whole_step_in_two_processes(tmp_path):
    # every process draws from the same seeded stream; each must take its share of the step's
    # masks (not repeat rank 0's), so two processes again follow one
    data = write_ljspeech(tmp_path / "LJSpeech-1.1", n_clips=6)
    cfg = make_tiny_cfg(data, tmp_path, "model.name=mae", "data.crop_frames=32", "train.batch_size=4",
                        "model.params={patch_mels: 8, patch_frames: 4, dim: 16, depth: 1, heads: 2, decoder_dim: 8, "
                        "decoder_depth: 1, decoder_heads: 2, mask_mode: random_patches}",
                        "loss.weights={mse: 1.0}", "train.schedule=constant", "train.max_steps=3", "train.ckpt_every=3")
    single, double = one_and_two_processes(cfg, tmp_path)
    np.testing.assert_allclose(double[:, 1], single[:, 1], rtol=1e-4)


def test_a_gan_trains_in_two_processes_with_its_adversarial_term_off(tmp_path):
    """With the adversarial weight at 0 the discriminator's last layer gets no gradient in the
    generator's step; DDP must not wait for it (it is averaged by the loop itself)."""
    data = write_ljspeech(tmp_path / "LJSpeech-1.1", n_clips=6)
    cfg = make_tiny_cfg(data, tmp_path, "model.name=pix2pix", "model.params={}", "train.batch_size=4",
                        "loss.weights={mse: 1.0, adversarial: 0.0, feature_matching: 0.5}",
                        "train.max_steps=3", "train.ckpt_every=3")
    config = tmp_path / "gan.yaml"
    save_config(cfg, config)
    run = torchrun(2, "--config", config, "--set", "run_name=gan")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("step=3") == 1


def test_global_batch_must_split_over_the_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(UserError, match="train.batch_size: the global batch of 3 does not split over 2"):
        init_world(torch.device("cpu"), 3)
