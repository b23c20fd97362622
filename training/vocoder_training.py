"""Training the learned vocoders' nets (models.vocoder_nets) on real clips.

    python scripts/train_vocoder.py --config configs/melspec2spec_ljspeech.yaml

The config is an ordinary one: ``vocoder.method`` names the net and ``vocoder.params``
its size; ``audio`` is the analysis the net will serve (a vocoder checkpoint only fits
inpainters with the same audio settings), ``data`` the clips, split by file as for the
inpainters (the test files are never seen), ``train`` the batch, steps and learning
rate. Items are crops of ``data.crop_frames`` frames at seeded positions, a pure function
of (seed, index). Writes ``<checkpoints_dir>/<run>/{last,best}.pt`` (best on the
validation crops) and ``<runs_dir>/<run>/losses.csv``.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from datasets.mel_dataset import build_splits
from models.vocoder_nets import LOG_FLOOR, VOCODER_NETS, build_vocoder_net
from processors.audio_io import load_mono
from processors.core.errors import UserError
from processors.mel import MelInverse, MelSpectrogram, normalised_to_amplitude
from processors.metrics import LSD_FLOOR_DB
from processors.vocoders import istft, stft
from processors.core.checkpoint_io import save_checkpoint, seed_everything
from processors.core.config import Config, save_config
from training.trainer import lr_lambda

log = logging.getLogger(__name__)
FLOOR_DB = LSD_FLOOR_DB     # magnitudes are compared down to 80 dB below each crop's peak, as the evaluation's LSD


def load_waves(files: list[Path], sample_rate: int, min_samples: int) -> list[np.ndarray]:
    """Every readable file at ``sample_rate``, mono; shorter or unreadable ones are skipped."""
    waves = []
    for path in files:
        try:
            wave = load_mono(path, sample_rate)
        except UserError as exc:
            log.warning("skipped %s", exc)
            continue
        if len(wave) >= min_samples:
            waves.append(wave)
    if not waves:
        raise UserError(f"no usable clip among {len(files)} files (each needs at least {min_samples} samples)")
    return waves


def crop_batch(waves: list[np.ndarray], n_samples: int, seed: int, first: int, count: int) -> torch.Tensor:
    """Items ``first .. first + count - 1``: (count, n_samples) crops at seeded positions,
    files drawn in proportion to their length."""
    sizes = np.array([len(w) - n_samples + 1 for w in waves], dtype=np.float64)
    weights = sizes / sizes.sum()
    out = []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index])
        wave = waves[int(rng.choice(len(waves), p=weights))]
        start = int(rng.integers(0, len(wave) - n_samples + 1))
        out.append(wave[start:start + n_samples])
    return torch.from_numpy(np.stack(out).astype(np.float32))


class Features(torch.nn.Module):
    """Crops (B, N) -> what the nets see: the true STFT (B, F, T), the normalised log-Mel
    (B, n_mels, T) and the Mel-inverted magnitude (B, F, T) the vocoder would start from."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.audio = cfg.audio
        self.mel = MelSpectrogram(cfg.audio)
        self.inverse = MelInverse(cfg.audio, cfg.vocoder.mel_inverse)
        self.register_buffer("window", torch.hann_window(cfg.audio.win_length))

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        a = self.audio
        mel = self.mel(wave)
        return {"spec": stft(wave, a, self.window), "mel": mel,
                "magnitude": self.inverse(normalised_to_amplitude(mel, a.min_db, a.max_db))}

    def consistent(self, spec: torch.Tensor) -> torch.Tensor:
        """Griffin-Lim's consistency projection: istft, then stft, (B, F, T) -> (B, F, T)."""
        return stft(istft(spec, self.audio, self.window), self.audio, self.window)


def floored_log(magnitude_log: torch.Tensor, peak_log: torch.Tensor) -> torch.Tensor:
    return torch.maximum(magnitude_log, peak_log - FLOOR_DB / 20 * math.log(10))


def refiner_loss(net, feats: dict, features: Features, generator: torch.Generator) -> torch.Tensor:
    """Squared error between the refined and the true log magnitude, both floored 80 dB below
    the peak: the square, because the log-spectral distance it should lower is an RMS."""
    truth = torch.log(feats["spec"].abs() + LOG_FLOOR)
    peak = truth.amax(dim=(-2, -1), keepdim=True)
    return (floored_log(net(feats["mel"], feats["magnitude"]), peak) - floored_log(truth, peak)).pow(2).mean()


def degli_loss(net, feats: dict, features: Features, generator: torch.Generator,
               snr_db=(-6.0, 12.0)) -> torch.Tensor:
    """Deep Griffin-Lim's training (Masuyama et al. 2019): the true STFT plus complex noise at a
    random SNR is x; one step x -> z - net(x, y, z) should give the true STFT back. L1 of the
    complex error, relative to each crop's RMS magnitude."""
    truth, magnitude = feats["spec"], feats["magnitude"]
    b = truth.shape[0]
    power = truth.abs().pow(2).mean(dim=(-2, -1), keepdim=True)
    snr = torch.empty(b, 1, 1).uniform_(*snr_db, generator=generator)
    sigma = (power / 10 ** (snr / 10) / 2).sqrt()
    noise = torch.complex(torch.randn(truth.shape, generator=generator), torch.randn(truth.shape, generator=generator))
    x = truth + sigma * noise
    y = magnitude * x / (x.abs() + 1e-16)
    z = features.consistent(y)
    error = (z - net(x, y, z, magnitude) - truth).abs().mean(dim=(-2, -1), keepdim=True)
    return (error / power.sqrt().clamp(min=LOG_FLOOR)).mean()


LOSSES: dict[str, Callable] = {"melspec2spec": refiner_loss, "degli": degli_loss}


def check_run_dirs(cfg: Config) -> tuple[Path, Path]:
    """The run's checkpoint and log folders; UserError when the checkpoint folder holds a run."""
    t = cfg.train
    ckpt_dir, run_dir = Path(t.checkpoints_dir) / cfg.run_name, Path(t.runs_dir) / cfg.run_name
    if (ckpt_dir / "best.pt").exists():     # written first: even an interrupted run is kept
        raise UserError(f"{ckpt_dir} already holds a run; start another with --set run_name=NAME")
    return ckpt_dir, run_dir


def fit_net(cfg: Config, net: torch.nn.Module, batch_at: Callable[[int], object], val_batch: object,
            loss_fn: Callable, extra_state: dict | None = None) -> dict:
    """The loop every net trained on crops shares (the vocoders' nets, the learned reassigned
    inverse): AdamW with the trainer's schedule (training.trainer.lr_lambda), ``batch_at(step)``
    the batch of step 1.., ``loss_fn(net, batch, generator)`` its loss, validation on the fixed
    ``val_batch`` every ``train.val_every`` steps and at step 0 (the untrained net), ``best.pt``
    on a new best and ``last.pt`` at the end (each holds config, weights, step, validation
    loss and ``extra_state``), ``<runs_dir>/<run>/losses.csv``."""
    t = cfg.train
    ckpt_dir, run_dir = check_run_dirs(cfg)

    def validate() -> float:
        net.eval()
        with torch.no_grad():
            loss = loss_fn(net, val_batch, torch.Generator().manual_seed(cfg.seed)).item()
        net.train()
        return loss

    optimizer = torch.optim.AdamW(net.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    generator = torch.Generator().manual_seed(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    best = start = val = validate()
    log.info("%s: validation loss %.4f at step 0 (the untrained net)", cfg.run_name, start)
    state = lambda step, val: {"config": cfg.to_dict(), "model": net.state_dict(), "step": step, "val_loss": val,
                               **(extra_state or {})}
    save_checkpoint(ckpt_dir / "best.pt", state(0, best))
    with open(run_dir / "losses.csv", "w", buffering=1) as losses:
        for step in tqdm(range(1, t.max_steps + 1), desc=cfg.run_name, unit="step", dynamic_ncols=True):
            loss = loss_fn(net, batch_at(step), generator)
            if not torch.isfinite(loss):
                raise UserError(f"loss became {loss.item()} at step {step}; try a lower train.lr (now {t.lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), t.grad_clip)
            optimizer.step()
            schedule.step()
            losses.write(f"{step},{loss.item():.8g}\n")
            if step % t.val_every == 0 or step == t.max_steps:
                val = validate()
                log.info("step %d: validation loss %.4f", step, val)
                if val < best:
                    best = val
                    save_checkpoint(ckpt_dir / "best.pt", state(step, val))
    save_checkpoint(ckpt_dir / "last.pt", state(t.max_steps, val))
    return {"step": t.max_steps, "val_loss_start": start, "val_loss_best": best, "checkpoint": str(ckpt_dir / "best.pt")}


def train_vocoder_net(cfg: Config) -> dict:
    """Train ``cfg.vocoder.method``'s net; returns the final step, losses and paths."""
    v, t, d = cfg.vocoder, cfg.train, cfg.data
    if v.method not in VOCODER_NETS:
        raise UserError(f"vocoder.method: {v.method!r} has no net to train (trainable: {', '.join(sorted(VOCODER_NETS))})")
    check_run_dirs(cfg)
    if t.num_threads > 0:
        torch.set_num_threads(t.num_threads)
    seed_everything(cfg.seed)
    net = build_vocoder_net(v.method, v.params, cfg.audio)
    feats_fn, loss_fn = Features(cfg), LOSSES[v.method]
    n_samples = (d.crop_frames - 1) * cfg.audio.hop_length
    splits = build_splits(cfg)
    train = load_waves(splits["train"], cfg.audio.sample_rate, n_samples)
    val_crops = crop_batch(load_waves(splits["val"], cfg.audio.sample_rate, n_samples), n_samples,
                           cfg.seed + 1_000_003, 0, d.val_items)
    with torch.no_grad():
        val_feats = feats_fn(val_crops)          # fixed crops: their features are computed once

    def batch_at(step: int) -> dict:
        with torch.no_grad():
            return feats_fn(crop_batch(train, n_samples, cfg.seed, (step - 1) * t.batch_size, t.batch_size))

    # step 0 is the classical vocoder: the nets start as it
    return fit_net(cfg, net, batch_at, val_feats, lambda n, b, g: loss_fn(n, b, feats_fn, g))
