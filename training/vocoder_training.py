"""Training the learned vocoders' nets (models.vocoder_nets) on real clips.

    python scripts/train_vocoder.py --config configs/melspec2spec_ljspeech.yaml [--resume last.pt]

The config is an ordinary one: ``vocoder.method`` names the net and ``vocoder.params``
its size; ``audio`` is the analysis the net will serve (a vocoder checkpoint only fits
inpainters with the same audio settings), ``data`` the clips, split by file as for the
inpainters (the test files are never seen), ``train`` the batch, steps and learning
rate. Items are crops of ``data.crop_frames`` frames at seeded positions, a pure function
of (seed, index). The loop is the inpainters' (training.loop): ``--resume``, save on
SIGINT/SIGTERM, TensorBoard and ``losses.csv`` under ``<runs_dir>/<run>``, atomic
``<checkpoints_dir>/<run>/{last,best}.pt`` (best on the validation crops).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from datasets.mel_dataset import build_splits
from models.vocoder_nets import VOCODER_NETS, build_vocoder_net
from processors.audio_io import load_mono
from processors.core.errors import UserError
from processors.core.registry import Registry
from processors.mel import MelInverse, MelSpectrogram, normalised_to_amplitude
from processors.inpaint import window_samples
from processors.metrics import LSD_FLOOR_DB
from processors.vocoders import LOG_FLOOR, istft, stft
from processors.core.config import Config
from training.loop import VAL_SEED_SALT, Loop
from training.task import Task

log = logging.getLogger(__name__)


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


def seeded_windows(lengths: list[int], width: int, seed: int, first: int, count: int) -> list[tuple[int, int]]:
    """Items ``first .. first + count - 1`` as (file index, start) of a window ``width`` long
    at a seeded position, files drawn in proportion to the positions they offer
    (``lengths[i] - width + 1``). Item i's draw depends on (seed, i) alone."""
    sizes = np.array([n - width + 1 for n in lengths], dtype=np.float64)
    weights = sizes / sizes.sum()
    out = []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index])
        file = int(rng.choice(len(lengths), p=weights))
        out.append((file, int(rng.integers(0, lengths[file] - width + 1))))
    return out


def crop_batch(waves: list[np.ndarray], n_samples: int, seed: int, first: int, count: int) -> torch.Tensor:
    """Items ``first .. first + count - 1`` of :func:`seeded_windows`: (count, n_samples) crops."""
    spans = seeded_windows([len(w) for w in waves], n_samples, seed, first, count)
    return torch.from_numpy(np.stack([waves[i][s:s + n_samples] for i, s in spans]).astype(np.float32))


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
    return torch.maximum(magnitude_log, peak_log - LSD_FLOOR_DB / 20 * math.log(10))


NET_LOSSES = Registry("vocoder net loss")   # vocoder method -> loss(net, feats, features, generator)


@NET_LOSSES.register("melspec2spec")
def refiner_loss(net, feats: dict, features: Features, generator: torch.Generator) -> torch.Tensor:
    """Squared error between the refined and the true log magnitude, both floored 80 dB below
    the peak: the square, because the log-spectral distance it should lower is an RMS."""
    truth = torch.log(feats["spec"].abs() + LOG_FLOOR)
    peak = truth.amax(dim=(-2, -1), keepdim=True)
    return (floored_log(net(feats["mel"], feats["magnitude"]), peak) - floored_log(truth, peak)).pow(2).mean()


@NET_LOSSES.register("degli")
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


class CropTask(Task):
    """A net trained on seeded crops of real clips (the vocoders' nets, the reassigned corrector):
    ``batch(step)`` the batch of step 1.., ``loss(net, batch, generator)`` its loss, validated on
    the fixed ``val_batch`` every ``train.val_every`` steps and at step 0 (the untrained net).
    One process on the CPU, as these nets always trained; checkpoints add to the loop's entries
    ``val_loss`` (the validation loss when written), ``val_loss_start`` and the state of the
    generator that draws the training noise."""

    validate_first = True
    distributed = False
    cpu_only = True
    run_files = ("last.pt", "best.pt")      # best.pt is written first: even an interrupted run is kept
    val_batch: object

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.val_loss = self.val_loss_start = float("nan")

    def batch(self, step: int):
        raise NotImplementedError

    def loss(self, net, batch, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def train_batches(self, step: int):
        return (self.batch(s) for s in range(step + 1, self.cfg.train.max_steps + 1))

    def train_step(self, loop: Loop, batch) -> tuple[float, dict]:
        loss = self.loss(loop.net, batch, self.generator)
        loop.update("model", loss)
        return loss.item(), {}

    def validate(self, loop: Loop, writer) -> dict:
        self.val_loss = self.loss(self.model, self.val_batch, torch.Generator().manual_seed(self.cfg.seed)).item()
        if loop.step == 0:
            self.val_loss_start = self.val_loss
            log.info("%s: validation loss %.4f at step 0 (the untrained net)", self.cfg.run_name, self.val_loss)
        else:
            log.info("step %d: validation loss %.4f", loop.step, self.val_loss)
        return {"val_loss": self.val_loss}

    def state(self) -> dict:
        return {"val_loss": self.val_loss, "val_loss_start": self.val_loss_start,
                "train_generator": self.generator.get_state()}

    def restore(self, state: dict) -> None:
        self.val_loss, self.val_loss_start = state["val_loss"], state["val_loss_start"]
        self.generator.set_state(state["train_generator"])

    def summary(self, loop: Loop, metrics: dict, seconds: float) -> dict:
        return {"step": loop.step, "val_loss_start": self.val_loss_start, "val_loss_best": loop.best,
                "checkpoint": str(loop.ckpt_dir / "best.pt")}


class VocoderTask(CropTask):
    """``cfg.vocoder.method``'s net on crops of ``data.crop_frames`` frames; step 0 is the
    classical vocoder: the nets start as it."""

    def __init__(self, cfg: Config, device=None, world=None):
        super().__init__(cfg)
        v = cfg.vocoder
        if v.method not in VOCODER_NETS:
            raise UserError(f"vocoder.method: {v.method!r} has no net to train "
                            f"(trainable: {', '.join(sorted(VOCODER_NETS))})")
        self.model = build_vocoder_net(v.method, v.params, cfg.audio)
        self.what = f"{v.method} net"
        self.features, self.net_loss = Features(cfg), NET_LOSSES.lookup(v.method, "vocoder.method")
        self.n_samples = window_samples(cfg)

    def describe(self) -> str:
        return f"the {self.cfg.vocoder.method} vocoder's net"

    def load_data(self) -> None:
        cfg, n = self.cfg, self.n_samples
        splits = build_splits(cfg)
        self.train = load_waves(splits["train"], cfg.audio.sample_rate, n)
        val_crops = crop_batch(load_waves(splits["val"], cfg.audio.sample_rate, n), n,
                               cfg.seed + VAL_SEED_SALT, 0, cfg.data.val_items)
        with torch.no_grad():
            self.val_batch = self.features(val_crops)      # fixed crops: their features are computed once

    def batch(self, step: int) -> dict:
        b = self.cfg.train.batch_size
        with torch.no_grad():
            return self.features(crop_batch(self.train, self.n_samples, self.cfg.seed, (step - 1) * b, b))

    def loss(self, net, batch, generator):
        return self.net_loss(net, batch, self.features, generator)


def train_vocoder_net(cfg: Config, resume: dict | None = None) -> dict:
    """Train ``cfg.vocoder.method``'s net (or continue ``resume``, a ``last.pt``'s state);
    returns the final step, losses and paths."""
    return Loop(cfg, VocoderTask, resume).fit()
