"""Shared test fixtures: a tiny CPU config and a tiny LJSpeech-1.1 folder made on the fly.

Everything here is small enough for tests of seconds on two CPU cores. Real
recordings (``../shared/data``) are optional: the tests that use them skip when
the folder is absent.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from processors.core.checkpoint_io import load_checkpoint, save_checkpoint
from processors.core.config import Config
from processors.core.config_io import save_config
from training.configure import load_config
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BASE_CONFIG = ROOT / "configs" / "unet_ljspeech.yaml"
CLIP_RATE = 22050          # LJSpeech's own rate: the tiny config (16 kHz) resamples it
N_CLIPS = 8

requires_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data not available at {SHARED}")


def pytest_sessionstart(session):
    # The test machine is small and shared: one thread keeps timings stable and
    # the run reproducible (BLAS reductions do not depend on the thread count).
    torch.set_num_threads(1)


# --------------------------------------------------------------------------- audio

def synth_clip(seconds: float, sr: int = CLIP_RATE, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: a gliding harmonic tone with a slow envelope, plus noise.

    float32 (N,) in about [-0.6, 0.6]; the noise floor means there is never a run
    of exact digital silence, even after 16-bit quantisation.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(110, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
    envelope = 0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(1, 3) * t) ** 2
    wave = 0.25 * envelope * tone + 0.01 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def write_clip(path: Path, seconds: float, sr: int = CLIP_RATE, seed: int = 0) -> Path:
    """Write :func:`synth_clip` as 16-bit PCM (the LJSpeech format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), synth_clip(seconds, sr, seed), sr, subtype="PCM_16")
    return path


def write_ljspeech(root: Path, n_clips: int = N_CLIPS) -> Path:
    """An LJSpeech-1.1-layout folder: ``metadata.csv`` (id|text|normalized text) and ``wavs/``."""
    lines = []
    for i in range(n_clips):
        clip_id = f"LJ001-{i + 1:04d}"
        write_clip(root / "wavs" / f"{clip_id}.wav", seconds=1.0 + i / max(1, n_clips - 1), seed=i)
        lines.append(f"{clip_id}|Sentence number {i + 1}.|Sentence number {i + 1}.")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# --------------------------------------------------------------------------- config

def tiny_overrides(data_root: Path, out_dir: Path) -> list[str]:
    """``--set`` strings turning the LJSpeech U-Net config into a seconds-long CPU run."""
    return [
        "run_name=tiny",
        "audio.sample_rate=16000", "audio.n_fft=512", "audio.win_length=512", "audio.hop_length=128",
        "audio.n_mels=40", "audio.f_max=8000",
        f"data.root={data_root}", "data.crop_frames=32", "data.val_items=4",
        "data.mask.gap_frames=8",       # unused in random mode, but validated against the crop
        "model.params.base_channels=4", "model.params.depth=2",
        "train.batch_size=2", "train.max_steps=6", "train.val_every=3", "train.ckpt_every=3",
        "train.log_every=1", "train.warmup_steps=2", "train.num_threads=1", "train.device=cpu",
        f"train.runs_dir={out_dir / 'runs'}", f"train.checkpoints_dir={out_dir / 'checkpoints'}",
        "vocoder.n_iter=4",
    ]


def make_tiny_cfg(data_root: Path, out_dir: Path, *extra: str) -> Config:
    """The tiny config, with ``extra`` overrides applied last."""
    return load_config(BASE_CONFIG, tiny_overrides(data_root, out_dir) + list(extra))


@pytest.fixture
def ljspeech_dir(tmp_path) -> Path:
    """A fresh tiny LJSpeech-1.1 folder of synthetic clips (1-2 s each)."""
    return write_ljspeech(tmp_path / "LJSpeech-1.1")


@pytest.fixture
def tiny_cfg(tmp_path, ljspeech_dir) -> Config:
    """A tiny CPU config on :func:`ljspeech_dir`, writing runs and checkpoints under ``tmp_path``."""
    return make_tiny_cfg(ljspeech_dir, tmp_path)


# --------------------------------------------------------------------------- CLI

def stop_after(loop, steps: int) -> None:
    """Make ``loop`` ask itself to stop, as SIGINT/SIGTERM would, once ``steps`` steps are done."""
    step_once = loop.train_step

    def step(batch):
        out = step_once(batch)
        loop.stop_requested = loop.step + 1 == steps
        return out
    loop.train_step = step


def run_script(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python scripts/<script> args...`` from the repo root, one thread, captured output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny data folder, its config file, and checkpoints of a U-Net, an FC model and a
    U-Net config carrying the FC's weights ("swapped"), shared by the module."""
    base = tmp_path_factory.mktemp("reliability")
    data = write_ljspeech(base / "LJSpeech-1.1", n_clips=6)
    steps = ["train.max_steps=2", "train.val_every=2", "train.ckpt_every=2"]
    unet = make_tiny_cfg(data, base, *steps)
    fc = make_tiny_cfg(data, base, *steps, "run_name=fc", "model.name=fc", "model.params={hidden: 16, layers: 2}")
    Trainer(unet).fit()
    Trainer(fc).fit()
    ckpts = base / "checkpoints"
    swapped = load_checkpoint(ckpts / "tiny" / "last.pt")
    swapped["model"] = load_checkpoint(ckpts / "fc" / "last.pt")["model"]
    save_checkpoint(base / "swapped.pt", {k: v for k, v in swapped.items() if k != "format_version"})
    config = base / "tiny.yaml"
    save_config(make_tiny_cfg(data, base / "unused"), config)
    return SimpleNamespace(base=base, data=data, config=config, unet=ckpts / "tiny" / "last.pt",
                           best=ckpts / "tiny" / "best.pt", fc=ckpts / "fc" / "last.pt", swapped=base / "swapped.pt")


def assert_only_gaps_changed(samples: np.ndarray, out: np.ndarray, gaps) -> None:
    """``out`` keeps the shape and dtype of ``samples``, fills every gap with something
    non-silent, and leaves every sample outside the gaps bit-identical."""
    assert out.shape == samples.shape and out.dtype == samples.dtype
    inside = np.zeros(len(samples), dtype=bool)
    for s, e in gaps:
        inside[s:e] = True
        assert np.any(out[s:e] != 0)
    assert np.array_equal(out[~inside], samples[~inside])


@pytest.fixture(scope="session")
def vocoder_nets(tmp_path_factory) -> dict[str, str]:
    """``{method: checkpoint}`` of every learned vocoder's net on the tiny config's audio,
    small and trained for 2 steps (enough to run, not to be good)."""
    from models.vocoder_nets import VOCODER_NETS
    from training.vocoder_training import train_vocoder_net
    base = tmp_path_factory.mktemp("vocoder_nets")
    data = write_ljspeech(base / "LJSpeech-1.1", n_clips=6)
    small = {"melspec2spec": "{channels: 8, layers: 1, kernel: 3}", "degli": "{channels: 4, layers: 2}"}
    return {method: train_vocoder_net(make_tiny_cfg(
                data, base, f"run_name={method}", f"vocoder.method={method}", f"vocoder.params={small[method]}",
                "train.max_steps=2", "train.val_every=1"))["checkpoint"]
            for method in VOCODER_NETS}
