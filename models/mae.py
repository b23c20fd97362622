"""Masked autoencoder (ViT-style) inpainter over patches of the log-Mel.

The Mel is cut into ``patch_mels x patch_frames`` patches on a grid derived from the
config's ``n_mels`` and ``crop_frames``; the encoder sees only the visible patches
(with fixed 2-D sine-cosine positions), a lighter decoder predicts every patch from
the encodings and a shared mask token. Conventions: mask 1 = missing; a patch is
hidden when any of its bins is missing.

Two masking modes (``mask_mode``):

- ``gap``: the batch's own gaps (whole frame spans, as at inference). Patches that
  only partly overlap a gap are hidden too; their known bins come back from the
  context when the base class pastes it over the prediction, so no seam shows at
  patch edges.
- ``random_patches``: self-supervised pre-training. :meth:`training_batch` replaces
  each training item's mask by a random ``mask_ratio`` of whole patches (drawn from
  the torch RNG, so resume stays exact) and rewrites the batch, so the trainer's
  masked losses count exactly the hidden patches. Validation keeps the gap masks:
  its numbers compare with every other inpainter's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from models.registry import Inpainter, register

MASK_MODES = ("gap", "random_patches")


@dataclass
class MAEParams:
    patch_mels: int = 16        # patch height in Mel bands
    patch_frames: int = 4       # patch width in frames: narrow, so a gap hides little context beside it
    dim: int = 128              # encoder width (a multiple of 4 and of heads)
    depth: int = 4
    heads: int = 4
    decoder_dim: int = 64       # lighter decoder, as in MAE
    decoder_depth: int = 2
    decoder_heads: int = 4
    mlp_ratio: float = 4.0
    mask_mode: str = "gap"      # 'gap' (inpainting) or 'random_patches' (pre-training)
    mask_ratio: float = 0.75    # random_patches: share of patches hidden

    def __post_init__(self):
        """Impossible values: ValueError('key: why'), which the config loader names in full."""
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode: must be one of {', '.join(MASK_MODES)}, got {self.mask_mode!r}")
        if not 0 < self.mask_ratio < 1:
            raise ValueError(f"mask_ratio: must be in (0, 1), got {self.mask_ratio}")
        for name in ("patch_mels", "patch_frames", "depth", "decoder_depth", "heads", "decoder_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for dim, heads in (("dim", "heads"), ("decoder_dim", "decoder_heads")):
            d, h = getattr(self, dim), getattr(self, heads)
            if d % 4 or d % h:    # 4: sine and cosine of two axes
                raise ValueError(f"{dim}: must be a multiple of 4 and of {heads} ({h}), got {d}")


def patch_grid(n_mels: int, n_frames: int, patch: tuple[int, int]) -> tuple[int, int]:
    """Patches along (frequency, time); a partial last patch is padded with the silence floor."""
    return math.ceil(n_mels / patch[0]), math.ceil(n_frames / patch[1])


def sincos_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """Fixed positional embeddings (gh * gw, dim): half the channels encode the row, half the column."""
    def axis(n: int, d: int) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d // 2))
        angle = torch.arange(n, dtype=torch.float64)[:, None] * omega[None]
        return torch.cat([angle.sin(), angle.cos()], dim=1)              # (n, d)
    rows, cols = axis(grid[0], dim // 2), axis(grid[1], dim // 2)
    emb = torch.cat([rows[:, None].expand(-1, grid[1], -1), cols[None].expand(grid[0], -1, -1)], dim=-1)
    return emb.reshape(grid[0] * grid[1], dim).float()


def patchify(x: torch.Tensor, patch: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """(B, 1, M, T) -> (B, gh * gw, ph * pw), row-major over the grid; zero-padded to the grid."""
    (ph, pw), (gh, gw) = patch, grid
    x = F.pad(x, [0, gw * pw - x.shape[-1], 0, gh * ph - x.shape[-2]])
    x = x.reshape(x.shape[0], gh, ph, gw, pw).permute(0, 1, 3, 2, 4)
    return x.reshape(x.shape[0], gh * gw, ph * pw)


def unpatchify(p: torch.Tensor, patch: tuple[int, int], grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """(B, gh * gw, ph * pw) -> (B, 1, M, T), the inverse of :func:`patchify` cropped to ``size``."""
    (ph, pw), (gh, gw) = patch, grid
    x = p.reshape(p.shape[0], gh, gw, ph, pw).permute(0, 1, 3, 2, 4).reshape(p.shape[0], 1, gh * ph, gw * pw)
    return x[..., :size[0], :size[1]]


def patch_mask_from_bins(mask: torch.Tensor, patch: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """Bin mask (B, 1, M, T) -> (B, gh * gw) bool: a patch is hidden if any of its bins is missing."""
    return patchify(mask, patch, grid).amax(dim=-1) > 0.5


def random_patch_mask(batch: int, n_patches: int, ratio: float, device=None) -> torch.Tensor:
    """(batch, n_patches) bool with exactly ``round(ratio * n_patches)`` hidden per row
    (at least one hidden and one visible), uniformly at random from the torch RNG."""
    hidden = min(max(round(ratio * n_patches), 1), n_patches - 1)
    ranks = torch.rand(batch, n_patches, device=device).argsort(dim=1).argsort(dim=1)
    return ranks < hidden


def patches_to_bins(hidden: torch.Tensor, patch: tuple[int, int], grid: tuple[int, int],
                    size: tuple[int, int]) -> torch.Tensor:
    """Patch mask (B, gh * gw) bool -> bin mask (B, 1, M, T) float, 1 on every bin of a hidden patch."""
    p = hidden[..., None].float().expand(-1, -1, patch[0] * patch[1])
    return unpatchify(p, patch, grid, size).contiguous()


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``.

    Written out rather than ``nn.TransformerEncoderLayer``, whose inference fast path
    takes another code path depending on grad mode: the perceptual loss must compute
    bit-identical features for identical inputs with and without gradients.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, dim); pad (B, N) bool, True for padding tokens no one may attend to."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        allowed = None if pad is None else ~pad[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


@register("mae", MAEParams)
class MAEInpainter(Inpainter):
    """Masked autoencoder; fixed input size (n_mels, n_frames) = the configured crop
    (inference feeds crop-sized windows around each gap)."""

    def __init__(self, params: MAEParams, n_mels: int, n_frames: int):
        super().__init__()
        self.params = params
        self.shape = (n_mels, n_frames)
        self.patch = (params.patch_mels, params.patch_frames)
        self.grid = patch_grid(n_mels, n_frames, self.patch)
        pixels = self.patch[0] * self.patch[1]
        d, dd = params.dim, params.decoder_dim
        self.embed = nn.Linear(pixels, d)
        self.register_buffer("pos", sincos_2d(d, self.grid), persistent=False)
        self.encoder = nn.ModuleList(Block(d, params.heads, params.mlp_ratio) for _ in range(params.depth))
        self.norm = nn.LayerNorm(d)
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.register_buffer("decoder_pos", sincos_2d(dd, self.grid), persistent=False)
        self.decoder = nn.ModuleList(Block(dd, params.decoder_heads, params.mlp_ratio)
                                     for _ in range(params.decoder_depth))
        self.decoder_norm = nn.LayerNorm(dd)
        self.head = nn.Linear(dd, pixels)

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def _check_size(self, x: torch.Tensor) -> None:
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"MAE inpainter expects (n_mels, frames) = {self.shape}, got {tuple(x.shape[-2:])}")

    def encode(self, masked: torch.Tensor, hidden: torch.Tensor):
        """Encode the visible patches only.

        masked (B, 1, M, T), hidden (B, N) bool -> encodings (B, L, dim) of the visible
        patches gathered to the front (L = most visible patches in the batch), their
        patch indices (B, L) and padding (B, L) bool (True where a row has fewer).
        """
        visible = ~hidden
        count = visible.sum(dim=1)
        if int(count.min()) == 0:
            raise ValueError("MAE needs at least one visible patch per item (the gap covers the whole crop)")
        length = int(count.max())
        order = torch.argsort(hidden.to(torch.int8), dim=1, stable=True)[:, :length]   # visible first
        pad = torch.arange(length, device=masked.device)[None] >= count[:, None]
        tokens = self.embed(patchify(masked, self.patch, self.grid)) + self.pos
        x = tokens.gather(1, order[..., None].expand(-1, -1, tokens.shape[-1]))
        for block in self.encoder:
            x = block(x, pad)
        return self.norm(x), order, pad

    def decode(self, encoded: torch.Tensor, order: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """Encodings of the visible patches -> every patch's pixels (B, N, ph * pw)."""
        x = self.decoder_embed(encoded)
        token = self.mask_token.to(x.dtype)
        x = torch.where(pad[..., None], token, x)             # padding rows land on hidden patches as mask tokens
        full = token.expand(x.shape[0], self.n_patches, -1)
        full = full.scatter(1, order[..., None].expand(-1, -1, x.shape[-1]), x) + self.decoder_pos
        for block in self.decoder:
            full = block(full)
        return self.head(self.decoder_norm(full))

    def predict(self, masked, mask):
        self._check_size(masked)
        hidden = patch_mask_from_bins(mask, self.patch, self.grid)
        pixels = self.decode(*self.encode(masked, hidden))
        return unpatchify(pixels, self.patch, self.grid, self.shape)

    def features(self, mel: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
        """Encoder activations for a perceptual loss, every patch visible.

        mel (B, 1, M, T) -> one (B, N, dim) tensor per entry of ``layers`` (1 = after
        the first encoder block, ``depth`` = after the last).
        """
        self._check_size(mel)
        x = self.embed(patchify(mel, self.patch, self.grid)) + self.pos
        out = {}
        for i, block in enumerate(self.encoder, start=1):
            x = block(x)
            out[i] = x
        return [out[i] for i in layers]

    def training_batch(self, batch):
        if self.params.mask_mode != "random_patches":
            return batch
        target = batch["target"]
        b = target.shape[0]
        # under torchrun every process draws from the same seeded stream: draw the whole step's
        # masks and keep this process's share, or each would repeat the others' masks
        rank, size = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() \
            else (0, 1)
        hidden = random_patch_mask(b * size, self.n_patches, self.params.mask_ratio, target.device)[rank * b:(rank + 1) * b]
        mask = patches_to_bins(hidden, self.patch, self.grid, self.shape)
        # the encoder never reads hidden bins, so the hole's fill value does not matter: 0
        return {**batch, "mask": mask, "masked": target * (1 - mask)}
