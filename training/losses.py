"""Inpainting losses. Each is ``fn(pred, target, mask) -> scalar`` on (B, 1, n_mels, T)
tensors with mask 1 = missing; only the masked region (and its seams) counts.

Weights are data (``loss.weights`` in the config): the total is
``sum(w * LOSSES[name](...) for name, w in weights.items())``.
"""
from __future__ import annotations

from typing import Callable

import torch

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}


def loss(name: str):
    def wrap(fn):
        LOSSES[name] = fn
        return fn
    return wrap


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


def total_loss(pred, target, mask, weights: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the configured terms, and each term (unweighted) for logging."""
    terms = {name: LOSSES[name](pred, target, mask) for name, w in weights.items() if w > 0}
    return sum(weights[name] * value for name, value in terms.items()), terms
