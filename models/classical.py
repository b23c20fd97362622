"""Classical Mel-domain fills, used as baselines beside the networks."""
from __future__ import annotations

import torch
from torch import nn


def linear_interpolation(masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill each masked run of frames by a straight line between the frames around it.

    masked, mask: (B, 1, n_mels, T); the mask is assumed constant over frequency
    (whole-frame gaps). Runs touching an edge repeat the nearest known frame.
    Returns (B, 1, n_mels, T) with the context unchanged.
    """
    out = masked.clone()
    missing = mask[:, 0, 0, :] > 0.5                      # (B, T)
    t = torch.arange(masked.shape[-1], dtype=masked.dtype, device=masked.device)
    for b in range(masked.shape[0]):
        known = torch.nonzero(~missing[b]).flatten()
        if len(known) == 0:
            continue
        holes = torch.nonzero(missing[b]).flatten()
        right = torch.searchsorted(known, holes).clamp(max=len(known) - 1)
        left = (right - 1).clamp(min=0)
        left = torch.where(known[right] < holes, right, left)         # hole after the last known frame
        left = torch.where(known[left] > holes, right, left)          # hole before the first known frame
        tl, tr = known[left].to(masked.dtype), known[right].to(masked.dtype)
        w = torch.where(tr > tl, (t[holes] - tl) / (tr - tl).clamp(min=1), torch.zeros_like(tl))
        out[b, :, :, holes] = (1 - w) * masked[b, :, :, known[left]] + w * masked[b, :, :, known[right]]
    return out


class SimilarityMelFill(nn.Module):
    """The similarity fill in the Mel domain: each gap takes the guide's Mel, the stretch of
    the same recording whose surroundings match best (processors.similarity); a gap without
    a match (score channel 0) falls back on linear interpolation.

    ``forward(masked, mask (B, 1, n_mels, T), guide (B, 2, n_mels, T)) -> (B, 1, n_mels, T)``,
    the context unchanged. No weights: a baseline beside the networks.
    """

    takes_guide = True

    def forward(self, masked: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        matched = (guide[:, 1:2] != 0).to(masked.dtype) * mask
        fallback = linear_interpolation(masked, mask)
        return fallback * (1 - matched) + guide[:, :1].to(masked.dtype) * matched


class CorpusCopy(nn.Module):
    """A corpus-searching model's guide alone (Inpainter.searches_corpus): each gap takes the
    stretch of the model's training clips whose surroundings match best, copied as it is,
    without the network's correction. For evaluation beside the model; no weights of its own.

    ``forward(masked, mask (B, 1, n_mels, T)) -> (B, 1, n_mels, T)``, the context unchanged.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        guide = self.model.corpus_guide(masked, mask, level=True)
        leveled = torch.cat([guide[:, :1] + guide[:, 2:], guide[:, 1:2]], dim=1)
        return SimilarityMelFill()(masked, mask, leveled)
