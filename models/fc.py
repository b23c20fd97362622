"""Fully-connected baseline: the whole masked crop in, the whole crop out."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.registry import Inpainter, register


@dataclass
class FCParams:
    hidden: int = 1024
    layers: int = 3
    dropout: float = 0.1


@register("fc", FCParams)
class FCInpainter(Inpainter):
    """MLP from the flattened (masked Mel, mask) crop to the Mel of the whole crop.

    Fixed input size: frames must equal the configured crop (inference feeds it
    crop-sized windows around each gap).
    """

    def __init__(self, params: FCParams, n_mels: int, n_frames: int):
        super().__init__()
        self.shape = (n_mels, n_frames)
        size = n_mels * n_frames
        layers, width = [], 2 * size
        for _ in range(params.layers - 1):
            layers += [nn.Linear(width, params.hidden), nn.SiLU(), nn.Dropout(params.dropout)]
            width = params.hidden
        layers.append(nn.Linear(width, size))
        self.net = nn.Sequential(*layers)

    def predict(self, masked, mask):
        if tuple(masked.shape[-2:]) != self.shape:
            raise ValueError(f"FC inpainter expects (n_mels, frames) = {self.shape}, got {tuple(masked.shape[-2:])}")
        b = masked.shape[0]
        x = torch.cat([masked, mask], dim=1).reshape(b, -1)
        return self.net(x).reshape(b, 1, *self.shape)
