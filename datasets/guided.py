"""Masked-Mel crops with the similarity guide, for models that take it (Inpainter.takes_guide),
or with the corpus guide of a model that searches its training clips (Inpainter.searches_corpus).

The guide of a crop's gap comes from the whole song, as at inference: the song's search
features are computed once per song when the dataset is built, so a crop costs one search
(a matrix product over the song's frames, a few milliseconds for a 4-minute song).
"""
from __future__ import annotations

import numpy as np
import torch

from datasets.mel_dataset import MaskedMelCrops, crop_item
from processors.similarity import search_features, window_guide
from processors.similarity_fill import context_frames


class GuidedMelCrops(MaskedMelCrops):
    """:class:`MaskedMelCrops` whose items also hold ``guide`` (2, n_mels, crop_frames):
    for each gap, the best match found over the whole song (its own gap excluded) and the
    match score (processors.similarity.window_guide). Items stay a pure function of
    ``(seed, index)``: the search draws no random numbers."""

    def __init__(self, mels: list[np.ndarray], crop_frames: int, mask_cfg, seed: int, length: int, cfg):
        super().__init__(mels, crop_frames, mask_cfg, seed, length)
        self.context = context_frames(cfg)
        self.feats = [search_features(m, cfg.similarity.bands) for m in mels]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        k = int(rng.choice(len(self.mels), p=self.weights))
        mel, feats = self.mels[k], self.feats[k]
        return crop_item(mel, self.crop, self.mask_cfg, rng,
                         lambda offset, columns: window_guide(mel, feats, offset, columns, self.context))


class CorpusGuidedMelCrops(MaskedMelCrops):
    """:class:`MaskedMelCrops` whose items also hold the corpus guide (2, n_mels, crop_frames)
    of a model that ``searches_corpus``: found over the training clips, never in the crop's
    own clip (its span in the corpus, when it is one of them), which would hold the answer."""

    def __init__(self, mels: list[np.ndarray], crop_frames: int, mask_cfg, seed: int, length: int,
                 search, spans: list | None):
        super().__init__(mels, crop_frames, mask_cfg, seed, length)
        self.search, self.spans = search, spans

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        k = int(rng.choice(len(self.mels), p=self.weights))
        exclude = self.spans[k] if self.spans is not None else None      # None: a clip the corpus left out
        item = crop_item(self.mels[k], self.crop, self.mask_cfg, rng)
        item["guide"] = self.search.guide(item["masked"][0], item["mask"][0, 0].numpy() > 0.5, exclude)
        return item


def build_crops(mels: list[np.ndarray], cfg, seed: int, length: int, guided: bool,
                corpus: tuple | None = None, own_clips: bool = False) -> MaskedMelCrops:
    """The crops a model trains or validates on: with the song's guide when the model takes
    it, with the corpus guide when it searches a corpus (``corpus``: what its
    ``index_corpus`` returned; ``own_clips``: ``mels`` are the corpus' own clips)."""
    d = cfg.data
    if corpus is not None:
        search, spans = corpus
        return CorpusGuidedMelCrops(mels, d.crop_frames, d.mask, seed, length, search, spans if own_clips else None)
    if guided:
        return GuidedMelCrops(mels, d.crop_frames, d.mask, seed, length, cfg)
    return MaskedMelCrops(mels, d.crop_frames, d.mask, seed, length)
