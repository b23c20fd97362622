"""U-Net inpainter over the (frequency, time) image of a log-Mel."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.classical import linear_interpolation
from models.registry import Inpainter, register


@dataclass
class UNetParams:
    base_channels: int = 32
    depth: int = 4            # number of 2x down-samplings
    # Predict a correction to linear interpolation across the gap instead of the
    # Mel itself: training starts at the interpolation baseline (zero-initialised
    # output) and only has to learn what a straight line misses.
    residual_interp: bool = False
    # Also take the similarity search's fill and score (Inpainter.takes_guide) as two more
    # input channels, so repeated music can be copied and corrected rather than guessed.
    guide: bool = False


class DoubleConv(nn.Module):
    """(conv 3x3 -> GroupNorm -> SiLU) x 2."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        groups = 8 if c_out % 8 == 0 else 1
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.SiLU())

    def forward(self, x):
        return self.net(x)


class Down(nn.Module):
    """Halve frequency and time (strided conv), then DoubleConv widening channels."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.pool = nn.Conv2d(c_in, c_in, 2, stride=2)
        self.conv = DoubleConv(c_in, c_out)

    def forward(self, x):
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Transposed conv doubling resolution, pad to the skip's size, concat, DoubleConv."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_in // 2, 2, stride=2)
        self.conv = DoubleConv(c_in // 2 + c_out, c_out)

    def forward(self, x, skip):
        x = self.up(x)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


@register("unet", UNetParams)
class UNetInpainter(Inpainter):
    """Encoder halves time-frequency resolution ``depth`` times while doubling channels;
    the decoder mirrors it with transposed convolutions and skip connections.
    Input channels: masked Mel and mask (with ``residual_interp`` the interpolation, with
    ``guide`` the guide's two channels). Any (n_mels, T) works: the input is padded
    to a multiple of ``2**depth`` and the output cropped back.
    """

    def __init__(self, params: UNetParams, n_mels: int, n_frames: int):
        super().__init__()
        c = params.base_channels
        widths = [c * 2 ** i for i in range(params.depth + 1)]
        self.multiple = 2 ** params.depth
        self.residual = params.residual_interp
        self.takes_guide = params.guide
        self.inc = DoubleConv(2 + self.residual + 2 * self.takes_guide, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(params.depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(params.depth)))
        self.out = nn.Conv2d(widths[0], 1, 1)
        if self.residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def predict(self, masked, mask, guide=None):
        h, w = masked.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        inputs = [masked, mask]
        if self.residual:
            base = linear_interpolation(masked, mask)
            inputs.append(base)
        if self.takes_guide:
            inputs.append(guide.to(masked.dtype))
        x = F.pad(torch.cat(inputs, dim=1), [0, pw, 0, ph], mode="replicate")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        out = self.out(x)[..., :h, :w]
        return base + out if self.residual else out
