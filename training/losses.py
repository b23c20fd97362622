"""Inpainting losses. Each is ``fn(pred, target, mask) -> scalar`` on (B, 1, n_mels, T)
tensors with mask 1 = missing; only the masked region (and its seams) counts.

Weights are data (``loss.weights`` in the config): the total is
``sum(w * fns[name](...) for name, w in weights.items())``. ``INPAINT_LOSSES`` holds the pure
functions; ``LOSS_BUILDERS`` the losses that need something built once from the config
(the perceptual loss's frozen feature network): :func:`build_losses` makes both kinds.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.build import load_inpainter
from processors.core.checkpoint_io import config_changes
from processors.core.errors import UserError
from processors.core.registry import Registry
from processors.mel import normalised_to_amplitude

INPAINT_LOSSES = Registry("loss")   # name -> fn(pred, target, mask)
LOSS_BUILDERS = Registry("loss builder")   # name -> builder(cfg, device)


loss = INPAINT_LOSSES.register


loss_builder = LOSS_BUILDERS.register


def _masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


@loss("mse")
def masked_mse(pred, target, mask):
    """Mean squared error over masked bins only."""
    return _masked_mean((pred - target) ** 2, mask)


@loss("l1")
def masked_l1(pred, target, mask):
    """Mean absolute error over masked bins only."""
    return _masked_mean((pred - target).abs(), mask)


@loss("boundary")
def boundary_smoothness(pred, target, mask):
    """Squared error of the time derivative at the seams where fill meets context.

    The prediction is first composed with the known context (context from
    ``target``), so its own context values are ignored; a seam is every pair of
    neighbouring frames (t, t+1) where the mask changes.
    """
    composed = target * (1 - mask) + pred * mask
    d_pred = composed[..., 1:] - composed[..., :-1]
    d_true = target[..., 1:] - target[..., :-1]
    seam = (mask[..., 1:] - mask[..., :-1]).abs()
    return _masked_mean((d_pred - d_true) ** 2, seam)


class PerceptualLoss(nn.Module):
    """Distance between a frozen MAE encoder's activations on prediction and target.

    ``fn(pred, target, mask)`` like the other losses: the prediction is first composed
    with the known context (context from ``target``), so only the fill counts, and the
    encoder sees every patch. The mean of the per-layer L1 (or MSE) distances.
    """

    def __init__(self, net: nn.Module, layers: list[int], distance: str):
        super().__init__()
        self.net, self.layers = net, list(layers)
        self.distance = F.l1_loss if distance == "l1" else F.mse_loss

    def forward(self, pred, target, mask):
        composed = target * (1 - mask) + pred * mask
        with torch.no_grad():
            reference = self.net.features(target, self.layers)
        features = self.net.features(composed, self.layers)
        return sum(self.distance(f, r) for f, r in zip(features, reference)) / len(features)


@loss_builder("perceptual")
def build_perceptual(cfg, device) -> PerceptualLoss:
    """The MAE of ``loss.perceptual.checkpoint``, frozen (no gradients, eval mode).

    Checked now, at start-up: a missing file, another model, other Mel settings or
    layers the encoder lacks are one-line UserErrors naming the key.
    """
    p, key = cfg.loss.perceptual, "loss.perceptual.checkpoint"
    if not p.checkpoint:
        raise UserError(f"{key}: the perceptual loss needs an MAE checkpoint "
                        f"(e.g. checkpoints/mae_pretrain_ljspeech/best.pt)")
    try:
        net, net_cfg = load_inpainter(p.checkpoint)
    except UserError as exc:
        raise UserError(f"{key}: {exc}") from None
    if not hasattr(net, "features"):
        raise UserError(f"{key}: {p.checkpoint} holds a {net_cfg.model.name!r} model; the perceptual loss needs an MAE")
    changes = config_changes(dataclasses.asdict(net_cfg.audio), dataclasses.asdict(cfg.audio), "audio.")
    if net_cfg.data.crop_frames != cfg.data.crop_frames:
        changes.append(f"data.crop_frames: {net_cfg.data.crop_frames} -> {cfg.data.crop_frames}")
    if changes:
        raise UserError(f"{key}: {p.checkpoint} was trained on other Mel settings ({changes[0]})")
    bad = [layer for layer in p.layers if not 1 <= layer <= len(net.encoder)]
    if bad:
        raise UserError(f"loss.perceptual.layers: {bad[0]} is not a block of that MAE (1..{len(net.encoder)})")
    return PerceptualLoss(net.requires_grad_(False).eval().to(device), p.layers, p.distance)


@loss_builder("compressed")
def build_compressed(cfg, device, exponent: float = 0.3) -> Callable[..., torch.Tensor]:
    """MSE over masked bins between power-law compressed Mel amplitudes, ``amplitude ** 0.3``.

    Why: on the normalised log scale an error near the -100 dB floor costs as much as one
    in a formant, though only the loud parts are heard; compressed amplitude weights bins
    roughly as loudness does (the power-law compression speech-enhancement losses use, and
    close to the loudness model inside PESQ), so the fill spends its accuracy where it is audible.
    """
    a = cfg.audio

    def compressed(pred, target, mask):
        lift = lambda v: normalised_to_amplitude(v, a.min_db, a.max_db) ** exponent
        return _masked_mean((lift(pred) - lift(target)) ** 2, mask)
    return compressed


def build_losses(cfg, device="cpu") -> dict[str, Callable[..., torch.Tensor]]:
    """``{name: fn(pred, target, mask)}`` for every weighted term the config names
    (terms a model computes itself are left out) and ``mse``, which picks ``best.pt``."""
    names = [n for n, w in cfg.loss.weights.items() if w > 0] + ["mse"]
    fns = {}
    for name in dict.fromkeys(names):
        if name in INPAINT_LOSSES:
            fns[name] = INPAINT_LOSSES[name]
        elif name in LOSS_BUILDERS:
            fns[name] = LOSS_BUILDERS[name](cfg, device)
    return fns


def total_loss(pred, target, mask, weights: dict[str, float], fns: dict | None = None,
               extra: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the configured terms, and each term (unweighted) for logging.

    ``fns`` defaults to the pure ``INPAINT_LOSSES``; ``extra`` are terms computed elsewhere
    (a model's own, e.g. a GAN's adversarial term), weighted by the same ``weights``.
    """
    fns = INPAINT_LOSSES if fns is None else fns
    terms = {name: fns[name](pred, target, mask) for name, w in weights.items() if w > 0 and name in fns}
    terms.update(extra or {})
    return sum(weights.get(name, 0.0) * value for name, value in terms.items()), terms
