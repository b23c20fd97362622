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
not in the data, so it is not asked for.
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
from processors.core.checkpoint_io import seed_everything
from processors.core.config import Config
from training.vocoder_training import check_run_dirs, fit_net, load_waves

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
    """Items ``first .. first + count - 1``: crops of ``frames`` frames at seeded positions,
    files drawn in proportion to their length; each key stacked to (count, ...)."""
    sizes = np.array([p["theta"].shape[-1] - frames + 1 for p in prepared], dtype=np.float64)
    weights = sizes / sizes.sum()
    items = []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index])
        p = prepared[int(rng.choice(len(prepared), p=weights))]
        start = int(rng.integers(0, p["theta"].shape[-1] - frames + 1))
        items.append({k: v[..., start:start + frames] for k, v in p.items()})
    return {k: torch.from_numpy(np.stack([item[k] for item in items])) for k in items[0]}


def corrector_loss(net, batch: dict, windows: torch.Tensor, hop: int, generator=None) -> torch.Tensor:
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


def train_reassigned_net(cfg: Config) -> dict:
    """Train the learned inverse for ``cfg.reassigned``; returns the final step, losses and paths."""
    rc, t, d = cfg.reassigned, cfg.train, cfg.data
    if rc.center:
        raise UserError("reassigned.center: the learned inverse supports center=False only")
    check_run_dirs(cfg)
    if t.num_threads > 0:
        torch.set_num_threads(t.num_threads)
    seed_everything(cfg.seed)
    min_samples = (d.crop_frames - 1) * rc.hop_length + rc.n_fft
    splits = build_splits(cfg)
    start = time.perf_counter()
    prepared = {name: [prepare(w, rc) for w in load_waves(splits[name], rc.sample_rate, min_samples)]
                for name in ("train", "val")}
    seconds = sum(p["theta"].shape[-1] for p in prepared["train"]) * rc.hop_length / rc.sample_rate
    log.info("classical reconstructions of %d training (%.0f s) and %d validation files in %.0f s",
             len(prepared["train"]), seconds, len(prepared["val"]), time.perf_counter() - start)
    windows = torch.from_numpy(unit_windows(rc)).float()
    net = PhaseCorrector(CorrectorParams(**rc.params))
    val = crops(prepared["val"], d.crop_frames, cfg.seed + 1_000_003, 0, d.val_items)
    return fit_net(cfg, net, lambda step: crops(prepared["train"], d.crop_frames, cfg.seed,
                                                (step - 1) * t.batch_size, t.batch_size),
                   val, lambda n, b, g: corrector_loss(n, b, windows, rc.hop_length), {"kind": KIND})
