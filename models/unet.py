"""U-Net inpainter over the (frequency, time) image of a log-Mel."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.classical import linear_interpolation
from models.registry import Inpainter, register
from processors.core.errors import UserError
from processors.corpus_search import CorpusSearch, quantise_corpus


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
    # Take the same two channels from a search of the training clips instead (speech: the
    # voice repeats its sounds across clips; processors.corpus_search). The model keeps the
    # clips' log-Mels (one byte a value) as the ``corpus`` buffer and searches it itself.
    corpus: bool = False
    corpus_bands: int = 40      # the log-Mel pooled into this many bands for that search
    corpus_context: int = 12    # frames compared on each side of a gap (12: 139 ms at hop 256, 22,050 Hz)
    corpus_max_frames: int = 0  # the corpus keeps training clips in order up to this many frames (0: all)


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
        self.searches_corpus = params.corpus
        if params.corpus:          # empty until the training data fills it (index_corpus) or a checkpoint does
            self.register_buffer("corpus", torch.zeros(n_mels, 0, dtype=torch.uint8))
            self.corpus_params = (params.corpus_bands, params.corpus_context, params.corpus_max_frames)
            self._search = None
        self.inc = DoubleConv(2 + self.residual + 2 * (self.takes_guide or self.searches_corpus), widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(params.depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(params.depth)))
        self.out = nn.Conv2d(widths[0], 1, 1)
        if self.residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def index_corpus(self, mels):
        if not self.searches_corpus:
            return None
        corpus, spans = quantise_corpus(mels, self.corpus_params[2])
        self.corpus.set_(corpus.to(self.corpus.device))      # in place: a DDP wrapper keeps its buffer list
        self._search = None
        return self.corpus_search(), spans

    def corpus_search(self) -> CorpusSearch:
        if self.corpus.shape[1] == 0:
            raise UserError("this model searches the corpus of its training clips, but holds none: "
                            "it was built without training data")
        if self._search is None:
            self._search = CorpusSearch(self.corpus.cpu(), *self.corpus_params[:2])
        return self._search

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "corpus"
        if self.searches_corpus and key in state_dict:     # the corpus takes the checkpoint's size
            self.corpus.set_(torch.empty_like(state_dict[key], device=self.corpus.device))
            self._search = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def corpus_guide(self, masked, mask, level: bool = False) -> torch.Tensor:
        """(B, 1, n_mels, T) masked Mels and masks -> (B, 2, n_mels, T) guides from the corpus
        (``level``: (B, 3, n_mels, T), the third channel what brings each copy to its window's
        level; CorpusSearch.guide). The network reads the first two."""
        search = self.corpus_search()
        return torch.stack([search.guide(m[0].float().cpu(), k[0, 0].cpu().numpy() > 0.5, level=level)
                            for m, k in zip(masked, mask)]).to(masked.device)

    def predict(self, masked, mask, guide=None):
        if self.searches_corpus and guide is None:
            guide = self.corpus_guide(masked, mask)
        h, w = masked.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        inputs = [masked, mask]
        if self.residual:
            base = linear_interpolation(masked, mask)
            inputs.append(base)
        if self.takes_guide or self.searches_corpus:
            inputs.append(guide[:, :2].to(masked.dtype))
        x = F.pad(torch.cat(inputs, dim=1), [0, pw, 0, ph], mode="replicate")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        out = self.out(x)[..., :h, :w]
        return base + out if self.residual else out
