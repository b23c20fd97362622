"""Training the learned reassigned inverse (models.reassigned_net) on real speech.

    python scripts/train_reassigned.py --config configs/reassigned_ljspeech.yaml

``reassigned`` holds the analysis, ``classical_iter`` (the iterations of pghi_reassigned the
net corrects) and ``params`` (the net); ``data`` the clips, split by file as for every model
(test files are never seen; the benchmark scores training and held-out files apart);
``train`` batch, steps and learning rate; ``data.crop_frames`` the frames of a crop.

Each training and validation file is analysed and rebuilt classically once, at the start
(the net sees exactly what inversion will give it); crops of its frames are then a pure
function of (seed, index). The loss compares the STFT of the corrected crop with the true
one, after turning the whole crop by the single angle that fits best: a constant phase is
not in the data, so it is not asked for. The loop is the inpainters' (training.loop):
``--resume``, save on SIGINT/SIGTERM, TensorBoard, atomic checkpoints.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from datasets.mel_dataset import build_splits
from models.reassigned_net import (CorrectorParams, PhaseCorrector, analysis_stft, corrected_triple,
                                   synthesise)
from processors.core.errors import UserError
from processors.reassigned import stfts
from processors.reassigned_features import correction_inputs
from processors.reassigned_gl import unit_windows
from processors.reassigned_inverse import analyse, pghi_phase, phase_derivatives, reassigned_iterations
from processors.core.config import Config
from training.loop import VAL_SEED_SALT, Loop
from training.vocoder_training import CropTask, load_waves, seeded_windows

log = logging.getLogger(__name__)
KIND = "reassigned_corrector"        # checkpoints say what they hold
MAGNITUDE_WEIGHT = 2.0               # see corrector_loss


def prepare(wave: np.ndarray, rc) -> dict[str, np.ndarray]:
    """One clip (N,) at rc.sample_rate -> the net's inputs for its classical reconstruction
    (processors.reassigned_features.correction_inputs) and ``truth``, its true unit-energy
    analysis STFT (F, T) complex64."""
    r, pad = analyse(wave, rc)
    rebuilt = reassigned_iterations(r, rc, pghi_phase(r, rc), rc.classical_iter)
    out = correction_inputs(rebuilt, r, rc, *phase_derivatives(r, rc))
    out["truth"] = stfts(np.pad(np.asarray(wave, np.float64), pad), unit_windows(rc)[:1], rc)[0].astype(np.complex64)
    return out


def crops(prepared: list[dict], frames: int, seed: int, first: int, count: int) -> dict[str, torch.Tensor]:
    """Items ``first .. first + count - 1`` of :func:`seeded_windows` over the files' frames:
    crops of ``frames`` frames, each key stacked to (count, ...)."""
    spans = seeded_windows([p["theta"].shape[-1] for p in prepared], frames, seed, first, count)
    return {k: torch.from_numpy(np.stack([prepared[i][k][..., s:s + frames] for i, s in spans]))
            for k in prepared[0]}


def corrector_loss(net, batch: dict, windows: torch.Tensor, hop: int) -> torch.Tensor:
    """Mean over crops of (|S_hat - e^{i a} S|^2 + MAGNITUDE_WEIGHT (|S_hat| - |S|)^2) / |S|^2 on the
    crop's inner frames, a the best angle: the net's corrected projection, synthesised and
    analysed again (S_hat), against the truth (S).

    The magnitude term is there because the complex error alone rewards muffling: where the
    phase is uncertain, a net that scrambles it so that the synthesis cancels those bins halves
    their complex error (E instead of 2E for energy E), and PESQ drops. With weight 2 the lost
    magnitude costs more than the cancellation gains."""
    theta = batch["theta"] + net(batch["features"])
    triple = corrected_triple(theta, batch["zd"], batch["zt"], batch["mags"], batch["g_d"], batch["g_t"],
                              batch["use_d"], batch["use_t"])
    rebuilt = analysis_stft(synthesise(triple, windows, hop), windows[0], hop)
    edge = math.ceil(windows.shape[-1] / hop)            # frames the crop's ends leave half-covered
    est, truth = rebuilt[..., edge:-edge], batch["truth"][..., edge:-edge]
    dims = (-2, -1)
    cross = (est * truth.conj()).sum(dim=dims).abs()
    energy = truth.abs().pow(2).sum(dim=dims)
    error = est.abs().pow(2).sum(dim=dims) + energy - 2 * cross
    error = error + MAGNITUDE_WEIGHT * (est.abs() - truth.abs()).pow(2).sum(dim=dims)
    return (error / (energy + 1e-8 * energy.mean() + 1e-20)).mean()


class CorrectorTask(CropTask):
    """The learned inverse of ``cfg.reassigned`` on crops of ``data.crop_frames`` frames of each
    file's classical reconstruction (made once, in :meth:`load_data`)."""

    what = "reassigned corrector"

    def __init__(self, cfg: Config, device=None, world=None):
        super().__init__(cfg)
        rc = cfg.reassigned
        if rc.center:
            raise UserError("reassigned.center: the learned inverse supports center=False only")
        self.model = PhaseCorrector(CorrectorParams(**rc.params))
        self.windows = torch.from_numpy(unit_windows(rc)).float()

    def describe(self) -> str:
        return "the learned reassigned inverse"

    def load_data(self) -> None:
        cfg, rc, d = self.cfg, self.cfg.reassigned, self.cfg.data
        min_samples = (d.crop_frames - 1) * rc.hop_length + rc.n_fft
        splits = build_splits(cfg)
        start = time.perf_counter()
        self.prepared = {name: [prepare(w, rc) for w in load_waves(splits[name], rc.sample_rate, min_samples)]
                         for name in ("train", "val")}
        seconds = sum(p["theta"].shape[-1] for p in self.prepared["train"]) * rc.hop_length / rc.sample_rate
        log.info("classical reconstructions of %d training (%.0f s) and %d validation files in %.0f s",
                 len(self.prepared["train"]), seconds, len(self.prepared["val"]), time.perf_counter() - start)
        self.val_batch = crops(self.prepared["val"], d.crop_frames, cfg.seed + VAL_SEED_SALT, 0, d.val_items)

    def batch(self, step: int) -> dict:
        b = self.cfg.train.batch_size
        return crops(self.prepared["train"], self.cfg.data.crop_frames, self.cfg.seed, (step - 1) * b, b)

    def loss(self, net, batch, generator):
        return corrector_loss(net, batch, self.windows, self.cfg.reassigned.hop_length)

    def state(self) -> dict:
        return {**super().state(), "kind": KIND}


def train_reassigned_net(cfg: Config, resume: dict | None = None) -> dict:
    """Train the learned inverse for ``cfg.reassigned`` (or continue ``resume``, a ``last.pt``'s
    state); returns the final step, losses and paths."""
    return Loop(cfg, CorrectorTask, resume).fit()
